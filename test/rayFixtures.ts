// Fixtures for the Ray backend's end-to-end tests: Ray itself (cached install), job specs with
// backend: ray, and a TCP proxy in front of the dashboard that a test can cut and restore.
import net from 'node:net';
import { cachedRayCommand, installRay } from '../deploy/local/ray.ts';
import type { JobSpec } from '../common/spec/index.ts';
import { jobSpec, type JobOptions } from './jobFixtures.ts';

/**
 * The `ray` command, installing Ray into the cache if needed. Without Ray the tests skip loudly,
 * except in CI (CI=true), where a missing Ray is a failure.
 */
export async function findOrInstallRay(): Promise<string | undefined> {
  const cached = cachedRayCommand();
  if (cached) return cached;
  try {
    return await installRay();
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`Ray could not be installed in CI: ${(err as Error).message}`);
    process.stderr.write(`\n*** SKIPPING the Ray backend tests: Ray is not installed and could not be installed (bash deploy/local/ray.sh): ${(err as Error).message}\n\n`);
    return undefined;
  }
}

/** A test job (examples/trainer.py) on the Ray cluster at `address`, sized for a 2-core machine. */
export function rayJobSpec(home: string, name: string, address: string, o: JobOptions = {}): JobSpec {
  const spec = jobSpec(home, name, o);
  return {
    ...spec,
    spec: {
      ...spec.spec,
      backend: 'ray',
      ray: { address, runtimeEnv: {}, resources: {} },
      resources: { cpu: 0.25, memory: 256 * 2 ** 20, gpu: 0 },
    },
  };
}

/** Forwards 127.0.0.1:<port> to a target port; `cut()` refuses connections until `restore()`. */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async restore(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
