// The YAML writer: every kind of string reads back as written, comments sit above what they explain.

import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { commented, plain, toYaml } from '../src/yaml.ts';

describe('toYaml', () => {
  it('reads back as the documents it was given, whatever the strings hold', () => {
    const strings = ['', 'yes', 'No', 'null', '1', '0x1f', '-a', 'a: b', 'a #b', "it's", '"q"', '[x]', '{x}', '*x', '&x', '!x', '%x', '@x', '`x', ' lead', 'trail ', 'é', 'tab\there'];
    const docs = [
      { kind: 'A', data: Object.fromEntries(strings.map((s, i) => [`k${i}`, s])), keys: Object.fromEntries(strings.filter(Boolean).map((s) => [s, s])) },
      { list: strings, nested: [{ a: [{ b: 'c' }], d: {} }, 'e', { f: ['g', 'h'] }], empty: [], n: 3, yes: true },
      { cel: "a ||\n  b\n\nc == 'x'", trailing: 'line\n', indented: '  a\nb', tabs: '\ta\n\tb' },
    ];
    expect(loadAllYaml(toYaml(docs))).toEqual(docs);
  });

  it('writes comments above what they explain, and plain() takes them off', () => {
    const doc = commented(['a document'], { rules: [commented(['a rule'], { verbs: ['get'] })], meta: commented(['a key'], { name: 'x' }) });
    expect(toYaml([doc])).toBe('# a document\nrules:\n  # a rule\n  - verbs: ["get"]\n# a key\nmeta:\n  name: x\n');
    expect(plain(doc)).toEqual({ rules: [{ verbs: ['get'] }], meta: { name: 'x' } });
    expect(loadAllYaml(toYaml([doc]))).toEqual([plain(doc)]);
  });

  it('separates documents with ---', () => {
    expect(toYaml([{ a: 1 }, { b: 2 }])).toBe('a: 1\n---\nb: 2\n');
  });
});
