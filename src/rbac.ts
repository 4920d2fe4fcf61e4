// Pure: the objects the tool's account needs in a namespace: RBAC, and the admission policy that narrows `patch pods`.

import { usageError } from './errors.ts';
import { changedAtAnnotation, fenceAnnotation } from './group.ts';
import { defaultLabelScheme, isDnsLabel, isDnsSubdomain, type LabelScheme } from './labels.ts';
import { chooseLabelScheme } from './settings.ts';
import { commented, toYaml } from './yaml.ts';

/** The options of `hab-pod-role rbac`, as the command line parser hands them over. */
export interface RbacOptions {
  namespace: string;
  serviceAccount: string;
  labelKey?: string | undefined;
  leaderValue?: string | undefined;
  followerValue?: string | undefined;
  policy: boolean;
}

/** What `hab-pod-role rbac` prints; a bad option is a usage error, before anything is printed. */
export function rbacManifest(options: RbacOptions): string {
  if (!isDnsLabel(options.namespace)) throw usageError(`--namespace: "${options.namespace}" is not a namespace name (lower case letters, digits and '-', at most 63 characters).`);
  if (!isDnsSubdomain(options.serviceAccount)) {
    throw usageError(`--service-account: "${options.serviceAccount}" is not a service account name (lower case letters, digits, '-' and '.', at most 253 characters).`);
  }
  // The same checks, defaults and messages as the label the tool writes.
  const scheme = chooseLabelScheme({}, options, 'defaults');
  const request = { namespace: options.namespace, serviceAccount: options.serviceAccount, scheme, policy: options.policy };
  return `# The objects hab-pod-role's pods need, as printed by: ${commandLine(request)}\n${toYaml(rbacObjects(request))}`;
}

/** The command that prints `request` again: the namespace always, other options when they are not the defaults. */
function commandLine({ namespace, serviceAccount, scheme, policy }: RbacRequest): string {
  const flags = [
    `--namespace ${namespace}`,
    serviceAccount !== 'hab-pod-role' ? `--service-account ${serviceAccount}` : '',
    scheme.key !== defaultLabelScheme.key ? `--label-key ${scheme.key}` : '',
    scheme.leader !== defaultLabelScheme.leader ? `--leader-value ${scheme.leader}` : '',
    scheme.follower !== defaultLabelScheme.follower ? `--follower-value ${scheme.follower}` : '',
    policy ? '' : '--no-policy',
  ];
  return ['hab-pod-role rbac', ...flags.filter(Boolean)].join(' ');
}

export interface RbacRequest {
  namespace: string;
  serviceAccount: string;
  scheme: LabelScheme;
  /** Without it, only the ServiceAccount, Role and RoleBinding (Kubernetes < 1.30, or no right to create cluster-scoped objects). */
  policy: boolean;
}

/** Every annotation the tool writes is under this prefix; on its own pod it may write any of them. */
export const annotationPrefix = 'hab-pod-role/';
/** What a promotion writes on the other members of its group (src/apply.ts), and all the policy lets it write there. */
export const peerAnnotations = [fenceAnnotation, changedAtAnnotation];

/**
 * The name of the policy and of its binding. They are cluster-scoped, so the namespace is part of the
 * name and each namespace installs its own; the namespaced objects are named after the service account.
 */
export function policyName({ namespace, serviceAccount }: Pick<RbacRequest, 'namespace' | 'serviceAccount'>): string {
  // A namespace has no dot, so the last dot parts the two unambiguously.
  return `${serviceAccount}.${namespace}`;
}

/** The documents `hab-pod-role rbac` prints, comments included (take them off with `plain`). */
export function rbacObjects(request: RbacRequest): unknown[] {
  const { namespace, serviceAccount: name } = request;
  const meta = { name, namespace };
  const rbac = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta,
      rules: [
        commented(
          [
            'get: read this pod; list: read its group before promoting it;',
            'patch: change the role label (of this pod, and of a stale leader it demotes);',
            'watch: notice a label changed by hand while `run` keeps it (a watch on this one pod),',
            "and, while its election says it leads, a rival's claim ending (a watch on its group's pods).",
          ],
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'patch', 'watch'] },
        ),
        commented(['create: record promotions and demotions as Events (kubectl describe pod).'], { apiGroups: [''], resources: ['events'], verbs: ['create'] }),
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  ];
  return request.policy ? [...rbac, ...policyObjects(request)] : rbac;
}

/**
 * The ValidatingAdmissionPolicy and its binding, with the label key and values written in. Not parameters
 * from a ConfigMap: the API server looks a binding's parameters up before its matchConditions, so while
 * they are missing the binding refuses every pod write in the namespace, by any user and controller.
 */
function policyObjects(request: RbacRequest): unknown[] {
  const { namespace, serviceAccount, scheme } = request;
  const name = policyName(request);
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  // Label keys and values are letters, digits, '-', '_', '.' and '/' (labels.ts checks them): no quote to escape.
  const literal = (value: string) => `'${value}'`;
  const printedBy = commandLine(request);
  const podName = "request.userInfo.extra[?'authentication.kubernetes.io/pod-name']";
  const podUid = "request.userInfo.extra[?'authentication.kubernetes.io/pod-uid']";
  const changed = (kind: string) =>
    `variables.old${kind}.filter(k, !(k in variables.new${kind}) || variables.new${kind}[k] != variables.old${kind}[k])\n  + variables.new${kind}.filter(k, !(k in variables.old${kind}))`;
  const notOwn = `'pod ' + object.metadata.name + ' is not the pod the token of ${serviceAccount} is bound to (' + variables.boundPod + ')'`;
  // Forbidden: the API server answers 403, as for a missing RBAC rule.
  const validation = (expression: string, messageExpression: string) => ({ expression, messageExpression, reason: 'Forbidden' });
  return [
    commented([
      `RBAC cannot narrow \`patch pods\`: without this policy ${serviceAccount} may change any label, annotation`,
      'and mutable spec field (container images included) of any pod in the namespace. With it, the account',
      'may write only the role label and hab-pod-role/ annotations: on its own pod (the one its token is',
      'bound to) set the role to a configured value or remove it; on other pods only remove the leader value.',
    ], {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods'] }] },
        matchConditions: [
          commented(['Only writes by the tool\'s account: every other writer is left to RBAC.'], { name: 'tool-service-account', expression: `request.userInfo.username == '${user}'` }),
        ],
        variables: [
          commented(
            ['The label the account may write: keep it equal to what the tool writes (print the set again to change it).'],
            { name: 'key', expression: literal(scheme.key) },
          ),
          { name: 'leader', expression: literal(scheme.leader) },
          { name: 'follower', expression: literal(scheme.follower) },
          commented(
            ['A token bound to a pod (what the kubelet mounts) names the pod in the request; any other names none.'],
            { name: 'boundPod', expression: `${podName}.hasValue() ? ${podName}.value()[0] : ''` },
          ),
          { name: 'ownPod', expression: `variables.boundPod == object.metadata.name && ${podUid}.orValue([''])[0] == object.metadata.uid` },
          { name: 'oldLabels', expression: 'oldObject.metadata.?labels.orValue({})' },
          { name: 'newLabels', expression: 'object.metadata.?labels.orValue({})' },
          { name: 'changedLabels', expression: changed('Labels') },
          { name: 'roleChanged', expression: 'variables.key in variables.changedLabels' },
          { name: 'oldAnnotations', expression: 'oldObject.metadata.?annotations.orValue({})' },
          { name: 'newAnnotations', expression: 'object.metadata.?annotations.orValue({})' },
          { name: 'changedAnnotations', expression: changed('Annotations') },
          { name: 'peerAnnotations', expression: `[${peerAnnotations.map((a) => `'${a}'`).join(', ')}]` },
        ],
        validations: [
          {
            expression: "variables.boundPod != ''",
            message: `the token of ${user} is not bound to a pod, so the policy cannot tell its own pod from the others; use the token the kubelet mounts in the pod (or kubectl create token --bound-object-kind Pod)`,
            reason: 'Forbidden',
          },
          validation(
            'object.spec == oldObject.spec',
            `'${serviceAccount} may not change the spec of pod ' + object.metadata.name + ' (containers, images, tolerations): only the label ' + variables.key + ' and ${annotationPrefix} annotations'`,
          ),
          validation(
            'object.metadata.?ownerReferences.orValue([]) == oldObject.metadata.?ownerReferences.orValue([])\n&& object.metadata.?finalizers.orValue([]) == oldObject.metadata.?finalizers.orValue([])',
            `'${serviceAccount} may not change the owner references or finalizers of pod ' + object.metadata.name`,
          ),
          validation(
            'variables.changedLabels.all(k, k == variables.key)',
            `'${serviceAccount} may change no label of pod ' + object.metadata.name + ' but ' + variables.key + ' (the key the policy was printed for: ${printedBy}), and this write changes ' + variables.changedLabels.filter(k, k != variables.key).join(', ')`,
          ),
          validation(
            '!variables.ownPod || !variables.roleChanged || !(variables.key in variables.newLabels)\n|| variables.newLabels[variables.key] in [variables.leader, variables.follower]',
            `'on its own pod ${serviceAccount} may set ' + variables.key + ' only to ' + variables.leader + ' or ' + variables.follower + ' (the values the policy was printed for: ${printedBy}) or remove it, and this write sets ' + variables.key + '=' + variables.newLabels[variables.key]`,
          ),
          validation(
            'variables.ownPod || !variables.roleChanged\n|| (!(variables.key in variables.newLabels) && variables.oldLabels[variables.key] == variables.leader)',
            `${notOwn} + ': there it may only remove ' + variables.key + '=' + variables.leader + ', and this write ' + (variables.key in variables.newLabels ? 'sets ' + variables.key + '=' + variables.newLabels[variables.key] : 'removes ' + variables.key + '=' + variables.oldLabels[variables.key])`,
          ),
          validation(
            `variables.changedAnnotations.all(k, k.startsWith('${annotationPrefix}'))`,
            `'${serviceAccount} may change no annotation of pod ' + object.metadata.name + ' outside ${annotationPrefix}, and this write changes ' + variables.changedAnnotations.filter(k, !k.startsWith('${annotationPrefix}')).join(', ')`,
          ),
          validation(
            'variables.ownPod || variables.changedAnnotations.all(k, k in variables.peerAnnotations && k in variables.newAnnotations)',
            `${notOwn} + ': there it may only write ${peerAnnotations.join(' and ')}, and this write changes ' + variables.changedAnnotations.filter(k, !(k in variables.peerAnnotations && k in variables.newAnnotations)).join(', ')`,
          ),
        ],
      },
    }),
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } },
      },
    },
  ];
}
