// The floor for any Node tool doing the same job: node:https, one GET and one merge PATCH of a pod's label, nothing else.
// Usage (in-cluster style environment, as the benchmark gives hab-pod-role): node-floor.mjs POD VALUE|-
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [pod, value] = process.argv.slice(2);
const dir = process.env.HAB_POD_ROLE_SERVICE_ACCOUNT_DIR;
const agent = new https.Agent({ ca: readFileSync(`${dir}/ca.crt`), keepAlive: true });
const token = readFileSync(`${dir}/token`, 'utf8').trim();
const call = (method, body) =>
  new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: process.env.KUBERNETES_SERVICE_HOST,
        port: process.env.KUBERNETES_SERVICE_PORT,
        path: `/api/v1/namespaces/${process.env.POD_NAMESPACE}/pods/${pod}`,
        method,
        agent,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/merge-patch+json' },
      },
      (response) => {
        response.resume();
        response.on('end', () => (response.statusCode < 300 ? resolve() : reject(new Error(`${method} ${response.statusCode}`))));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
await call('GET');
await call('PATCH', JSON.stringify({ metadata: { labels: { role: value === '-' ? null : value } } }));
agent.destroy();
