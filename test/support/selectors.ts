// Label selectors the local check must accept and refuse; the group tests hold the same lists against the real API server.

export const validSelectors = [
  'app=redis', 'app==redis', 'app!=redis', 'app', '!app', 'app in (redis, valkey)', 'tier notin (cache)', 'app=redis,tier!=cache',
  ' app = redis , example.com/role ', 'gen>3', 'app=', 'kubernetes.io/name=redis', 'App=Redis',
];

export const invalidSelectors: [string, RegExp][] = [
  ['éapp=redis', /label key "éapp" must be/],
  ['app=red is', /is not a label selector requirement/],
  ['app=redis,', /"" is not a label selector requirement/],
  ['app in (redis', /is not a label selector requirement/],
  [`app=${'x'.repeat(64)}`, /longer than 63/],
  ['Example.com/app=redis', /lowercase DNS subdomain/],
  ['app in (redis, -x)', /label value "-x" must be/],
  ['gen>three', /is not a label selector requirement/],
  ['=redis', /is not a label selector requirement/],
];
