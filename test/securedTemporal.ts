// A secured Temporal for tests: the dev server has no TLS, so a test puts a TLS-terminating gRPC
// proxy in front of it that demands a client certificate from the test's own CA (mutual TLS) and
// an API key, as a production cluster (or Temporal Cloud) does. The raw dev server behind it
// stands in for the cluster's private network.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';

/** The API key the proxy demands (`authorization: Bearer <key>`). */
export const SECURED_TEMPORAL_API_KEY = 'rover-test-api-key-5d1c';

export interface SecuredProxy {
  /** host:port of the proxy's TLS endpoint. */
  address: string;
  /** Why each refused TLS handshake failed (OpenSSL's reason or the certificate's verify error, e.g. `peer did not return a certificate`), in order. */
  tlsRefusals: string[];
  close(): void;
}

/**
 * Writes into `dir` (PEM): a CA (`rover-ca.pem`/`.key`), a server certificate it signed for
 * 127.0.0.1 and localhost (`server.*`), a client certificate it signed (`client.*`), and a client
 * certificate from another CA (`stranger.*`, signed by `other-ca`).
 */
export function makeCertificates(dir: string): void {
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
 * An HTTP/2 TLS server (certificates from makeCertificates in `dir`) that accepts only clients
 * with a certificate from `rover-ca` and requests with `authorization: Bearer
 * <SECURED_TEMPORAL_API_KEY>`, forwarding each gRPC call (headers, messages, trailers) to the
 * plain dev server at `upstream`.
 */
export function startSecuredProxy(dir: string, upstream: string): Promise<SecuredProxy> {
  const read = (f: string) => readFileSync(path.join(dir, f));
  const target = http2.connect(`http://${upstream}`);
  // A lost upstream fails the calls in flight (below); it must not crash the test process.
  target.on('error', () => {});
  const server = http2.createSecureServer({ key: read('server.key'), cert: read('server.pem'), ca: read('rover-ca.pem'), requestCert: true, rejectUnauthorized: true });
  const tlsRefusals: string[] = [];
  // A certificate that fails verification ends the handshake with the socket's authorizationError.
  server.on('tlsClientError', (err: Error & { reason?: string }, socket: TLSSocket) => tlsRefusals.push(String(socket.authorizationError ?? err.reason ?? err.message)));
  server.on('stream', (stream, headers) => {
    if (headers.authorization !== `Bearer ${SECURED_TEMPORAL_API_KEY}`) {
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
      // The caller gave up (a worker's long poll cancelled at shutdown): nothing to answer.
      if (stream.destroyed || stream.closed) return;
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
    // A call the caller cancelled is cancelled upstream too.
    stream.on('close', () => { if (!call.closed) call.close(http2.constants.NGHTTP2_CANCEL); });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ address: `127.0.0.1:${port}`, tlsRefusals, close: () => { server.close(); target.close(); } });
    });
  });
}
