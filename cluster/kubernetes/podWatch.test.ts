// The watch loop's 410 Gone path. The real apiserver in test/kubernetes.*.test.ts does not expire
// versions within a test, so a minimal HTTP endpoint plays one that does: every watch answers
// an ERROR 410 event and keeps the stream open, as an apiserver may.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.ts';
import { PodWatch } from './podWatch.ts';

describe('PodWatch', () => {
  let server: http.Server;
  let lists = 0;
  let watches = 0;
  const open = new Set<http.ServerResponse>();

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      res.setHeader('content-type', 'application/json');
      if (url.searchParams.get('watch') === 'true') {
        watches += 1;
        open.add(res);
        res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })}\n`);
        return;
      }
      lists += 1;
      const pod = { metadata: { name: 'rover-j-0-0', namespace: 'ns', resourceVersion: String(lists), labels: { 'rover.dev/job': 'j' } } };
      res.end(JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: String(lists) }, items: [pod] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const res of open) res.destroy();
    await new Promise((r) => server.close(r));
  });

  it('relists after 410 Gone even when the server keeps the stream open', async () => {
    const kc = new KubeConfig();
    const { port } = server.address() as AddressInfo;
    kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c' });
    const watch = new PodWatch({ kubeConfig: kc, core: kc.makeApiClient(CoreV1Api), namespace: 'ns', logger: createLogger('t', 'silent') });
    watch.start();
    try {
      for (const deadline = Date.now() + 20_000; lists < 3 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      expect(lists).toBeGreaterThanOrEqual(3);
      expect(watches).toBeGreaterThanOrEqual(2);
      expect(watch.get('ns', 'rover-j-0-0')).toBeDefined();
    } finally {
      await watch.stop();
    }
  });
});
