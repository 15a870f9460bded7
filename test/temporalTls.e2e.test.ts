// Rover against a secured Temporal: the dev server has no TLS, so the test puts a TLS-terminating
// gRPC proxy in front of it that demands a client certificate from the test's own CA (mutual TLS)
// and an API key, as a production cluster (or Temporal Cloud) does (test/securedTemporal.ts). The
// CLI's client connection and the worker's native connection must get through it with Rover's
// ROVER_TEMPORAL_* settings, and fail without the right certificate or key.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTemporal } from '../cli/jobs.ts';
import { ConfigError, loadConfig } from '../common/config.ts';
import { temporalConnectionOptions } from '../common/temporalConnection.ts';
import { temporalAddress } from './helpers.ts';
import { makeCertificates, SECURED_TEMPORAL_API_KEY as API_KEY, startSecuredProxy, type SecuredProxy } from './securedTemporal.ts';

describe('a secured Temporal (mutual TLS + API key, through a proxy in front of the dev server)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-tls-'));
  let proxy: SecuredProxy;
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
