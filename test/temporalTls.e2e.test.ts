// Rover against a secured Temporal: the dev server has no TLS, so the test puts a TLS-terminating
// gRPC proxy in front of it that demands a client certificate from the test's own CA (mutual TLS)
// and an API key, as a production cluster (or Temporal Cloud) does. The CLI's client connection and
// the worker's native connection must get through it with Rover's ROVER_TEMPORAL_* settings, and
// fail without the right certificate or key.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTemporal } from '../cli/jobs.ts';
import { ConfigError, loadConfig } from '../common/config.ts';
import { temporalConnectionOptions } from '../common/temporalConnection.ts';
import { temporalAddress } from './helpers.ts';

const API_KEY = 'rover-test-api-key-5d1c';

/** A CA, a server certificate for 127.0.0.1, a client certificate it signed and one it did not. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const newCa = (name: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${name}`);
  const issue = (name: string, ca: string, extensions: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  };
  newCa('rover-ca');
  newCa('other-ca');
  issue('server', 'rover-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', 'rover-ca', 'extendedKeyUsage=clientAuth\n');
  issue('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
}

/**
 * An HTTP/2 TLS server that accepts only clients with a certificate from `ca` and requests with
 * `authorization: Bearer <API_KEY>`, forwarding each gRPC call (headers, messages, trailers) to
 * the plain dev server at `upstream`.
 */
function startSecuredProxy(dir: string, upstream: string): Promise<{ address: string; close: () => void }> {
  const read = (f: string) => readFileSync(path.join(dir, f));
  const target = http2.connect(`http://${upstream}`);
  const server = http2.createSecureServer({ key: read('server.key'), cert: read('server.pem'), ca: read('rover-ca.pem'), requestCert: true, rejectUnauthorized: true });
  server.on('stream', (stream, headers) => {
    if (headers.authorization !== `Bearer ${API_KEY}`) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'missing or wrong API key' }, { endStream: true });
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith(':') || name === ':method' || name === ':path') forwarded[name] = value;
    }
    const call = target.request(forwarded);
    let trailers: http2.IncomingHttpHeaders = {};
    call.on('trailers', (t) => { trailers = t; });
    call.on('response', (responseHeaders) => {
      // A trailers-only answer (an error) carries its grpc-status in the headers.
      if (responseHeaders['grpc-status'] !== undefined) {
        stream.respond(responseHeaders, { endStream: true });
        return;
      }
      stream.respond(responseHeaders, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      call.pipe(stream);
    });
    stream.pipe(call);
    call.on('error', () => stream.destroy());
    stream.on('error', () => call.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ address: `127.0.0.1:${port}`, close: () => { server.close(); target.close(); } });
    });
  });
}

describe('a secured Temporal (mutual TLS + API key, through a proxy in front of the dev server)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-tls-'));
  let proxy: { address: string; close: () => void };
  const file = (f: string) => path.join(dir, f);
  /** The environment an operator sets for a secured cluster, minus whatever a case leaves out. */
  const secured = (over: Record<string, string | undefined> = {}) => {
    const env: Record<string, string | undefined> = {
      ROVER_HOME: dir,
      ROVER_TEMPORAL_ADDRESS: proxy.address,
      ROVER_TEMPORAL_TLS_CA_FILE: file('rover-ca.pem'),
      ROVER_TEMPORAL_TLS_CERT_FILE: file('client.pem'),
      ROVER_TEMPORAL_TLS_KEY_FILE: file('client.key'),
      ROVER_TEMPORAL_API_KEY_FILE: file('api-key'),
      // The certificate names localhost too; a name (not the IP) is what TLS's SNI carries.
      ROVER_TEMPORAL_TLS_SERVER_NAME: 'localhost',
      ...over,
    };
    return loadConfig(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv);
  };

  beforeAll(async () => {
    makeCertificates(dir);
    writeFileSync(file('api-key'), `${API_KEY}\n`);
    proxy = await startSecuredProxy(dir, temporalAddress());
  });
  afterAll(() => proxy?.close());

  it('connects the CLI client and the worker with the CA, client certificate and API key file', async () => {
    const { client, close } = await connectTemporal(secured());
    try {
      const info = await client.workflowService.getSystemInfo({});
      expect(info.capabilities).toBeTruthy();
      // A real list call through the proxy: the CLI's `rover list` reads the same way.
      const listed = await client.workflowService.listWorkflowExecutions({ namespace: 'default', pageSize: 1 });
      expect(Array.isArray(listed.executions)).toBe(true);
    } finally {
      await close();
    }
    const native = await NativeConnection.connect(temporalConnectionOptions(secured().temporal));
    try {
      const info = await native.workflowService.getSystemInfo({});
      expect(info.capabilities).toBeTruthy();
    } finally {
      await native.close();
    }
  });

  it('is refused without a client certificate, with one from another CA, or without the API key', async () => {
    const attempt = async (config: ReturnType<typeof secured>) => {
      const { client, close } = await connectTemporal(config);
      try {
        await client.workflowService.getSystemInfo({});
      } finally {
        await close();
      }
    };
    // The error says what to check, not to start a local stack.
    await expect(attempt(secured({ ROVER_TEMPORAL_TLS_CERT_FILE: undefined, ROVER_TEMPORAL_TLS_KEY_FILE: undefined }))).rejects.toThrow(/client certificate and key \(ROVER_TEMPORAL_TLS_\*\)/);
    await expect(attempt(secured({ ROVER_TEMPORAL_TLS_CERT_FILE: file('stranger.pem'), ROVER_TEMPORAL_TLS_KEY_FILE: file('stranger.key') }))).rejects.toThrow(/cannot reach Temporal/);
    await expect(attempt(secured({ ROVER_TEMPORAL_API_KEY_FILE: undefined }))).rejects.toThrow(/API key/);
    await expect(attempt(secured({ ROVER_TEMPORAL_API_KEY_FILE: undefined, ROVER_TEMPORAL_API_KEY: 'wrong-key' }))).rejects.toThrow(/API key/);
    // A plain connection to a TLS endpoint does not get through either.
    await expect(attempt(loadConfig({ ROVER_HOME: dir, ROVER_TEMPORAL_ADDRESS: proxy.address }))).rejects.toThrow(/ROVER_TEMPORAL_TLS_\* \/ ROVER_TEMPORAL_API_KEY/);
  });

  it('says which setting is wrong: half a certificate pair, an unreadable file, two API key sources', () => {
    expect(() => secured({ ROVER_TEMPORAL_TLS_KEY_FILE: undefined })).toThrow(ConfigError);
    expect(() => secured({ ROVER_TEMPORAL_TLS_KEY_FILE: undefined })).toThrow(/ROVER_TEMPORAL_TLS_CERT_FILE and ROVER_TEMPORAL_TLS_KEY_FILE/);
    expect(() => secured({ ROVER_TEMPORAL_API_KEY: 'k' })).toThrow(/not both/);
    const missing = file('no-such-ca.pem');
    expect(() => temporalConnectionOptions(secured({ ROVER_TEMPORAL_TLS_CA_FILE: missing }).temporal)).toThrow(`ROVER_TEMPORAL_TLS_CA_FILE=${missing} cannot be read`);
  });
});
