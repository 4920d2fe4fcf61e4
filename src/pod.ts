// The shapes of the Kubernetes objects the tool reads and writes: types only, so pure modules need not import the I/O module.

import type { V1Pod } from '@kubernetes/client-node/dist/gen/models/V1Pod.js';

export type Pod = V1Pod;

/** A JSON merge patch of labels and annotations (null removes a key), optionally conditional on a resourceVersion. */
export interface MetadataPatch {
  metadata: { labels?: Record<string, string | null>; annotations?: Record<string, string | null>; resourceVersion?: string };
}
