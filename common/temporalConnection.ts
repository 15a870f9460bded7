// How every Rover process (worker, Brain worker, CLI) connects to Temporal: plain on the embedded
// dev server; TLS (server CA, optional client certificate for mutual TLS) and/or an API key for a
// secured cluster. The SDK sends an API key as `authorization: Bearer <key>` and turns TLS on with it.
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config.js';
import { ConfigError, type RoverConfig } from './config.ts';

/** The connection options both SDK connections (client `Connection`, worker `NativeConnection`) take. */
export interface TemporalConnectionOptions {
  address: string;
  /** Absent on a plain connection. */
  tls?: TLSConfig;
  apiKey?: string;
}

function readSetting(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`${variable}=${file} cannot be read (${reason}); point it at a readable PEM file or unset it`);
  }
}

/**
 * Builds the SDK connection options from `config.temporal`: reads the CA, client certificate and
 * key files (PEM) named by ROVER_TEMPORAL_TLS_CA_FILE / _CERT_FILE / _KEY_FILE, and the API key from
 * ROVER_TEMPORAL_API_KEY or the file ROVER_TEMPORAL_API_KEY_FILE (trailing newline dropped).
 * Throws ConfigError naming the variable and file when one cannot be read.
 */
export function temporalConnectionOptions(temporal: RoverConfig['temporal']): TemporalConnectionOptions {
  const { address, tls, apiKey, apiKeyFile } = temporal;
  const options: TemporalConnectionOptions = { address };
  if (tls) {
    options.tls = {
      ...(tls.caFile && { serverRootCACertificate: readSetting('ROVER_TEMPORAL_TLS_CA_FILE', tls.caFile) }),
      ...(tls.certFile && tls.keyFile && {
        clientCertPair: {
          crt: readSetting('ROVER_TEMPORAL_TLS_CERT_FILE', tls.certFile),
          key: readSetting('ROVER_TEMPORAL_TLS_KEY_FILE', tls.keyFile),
        },
      }),
      ...(tls.serverName && { serverNameOverride: tls.serverName }),
    };
  }
  const key = apiKeyFile ? readSetting('ROVER_TEMPORAL_API_KEY_FILE', apiKeyFile).toString('utf8').trim() : apiKey;
  if (apiKeyFile && !key) throw new ConfigError(`ROVER_TEMPORAL_API_KEY_FILE=${apiKeyFile} is empty; write the API key into it`);
  if (key) options.apiKey = key;
  return options;
}
