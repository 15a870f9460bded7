// Bearer tokens at rest: the store keeps a digest of each job token, never the token, so reading
// the store (a backup, a leaked SQLite file, a MySQL account) yields nothing an agent or trainer
// could present. The token itself is derived by the worker (deriveJobToken) and lives only in the
// agents' environment: the workflow's history holds the run key it is derived from, not the token.
//
// A plain SHA-256 is enough here, with no salt and no slow KDF: those defend low-entropy secrets
// that people choose and reuse (passwords) against dictionaries and precomputed tables. A job
// token is machine-made, one per run, 256 bits of HMAC-SHA256: there is no dictionary
// to try, no two jobs share a digest, and inverting SHA-256 over that space is out of reach. A
// KDF would only make every heartbeat and shard lease pay its deliberate slowness.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Marks a stored value as a digest (and names the algorithm, should it ever change). */
const PREFIX = 'sha256:';
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * A run's job token: base64url HMAC-SHA256 (256 bits) keyed by the worker's signing key (the
 * operator token) over the job id and the run key the workflow keeps. The run key is in the
 * workflow's history, so anyone who can read Temporal sees it, but without the signing key it
 * yields no token; the worker's activities derive the same token on every retry and after
 * continue-as-new, and nothing but agents' environments ever holds it.
 */
export function deriveJobToken(signingKey: string, jobId: string, runKey: string): string {
  return createHmac('sha256', signingKey).update(`rover-job-token\n${jobId}\n${runKey}`, 'utf8').digest('base64url');
}

/** A node's identity as its token names it. */
export interface NodeTokenScope {
  node: number;
  incarnation: number;
}

const NODE_TOKEN = /^rn1\.(\d{1,9})\.(\d{1,9})\.([A-Za-z0-9_-]{43})$/;

function nodeTokenMac(signingKey: string, jobTokenDigest: string, node: number, incarnation: number): string {
  return createHmac('sha256', signingKey).update(`rover-node-token\n${digestHex(jobTokenDigest)}\n${node}\n${incarnation}`, 'utf8').digest('base64url');
}

/**
 * The token an agent and its trainers get: `rn1.<node>.<incarnation>.<mac>`, the mac an
 * HMAC-SHA256 (base64url, 43 characters) keyed by the signing key (the operator token) over the
 * run's job-token digest and the node incarnation. It opens only its job's run, and where a
 * request names a node, only as that node incarnation. The API checks it by recomputing the mac
 * from the job row it loads anyway: no store read of its own, and a store read yields none.
 */
export function nodeToken(signingKey: string, jobTokenDigest: string, scope: NodeTokenScope): string {
  return `rn1.${scope.node}.${scope.incarnation}.${nodeTokenMac(signingKey, jobTokenDigest, scope.node, scope.incarnation)}`;
}

/** The node incarnation `presented` was issued to for this run, or undefined if it is no such token (constant-time mac check). */
export function nodeTokenScope(presented: string | undefined, signingKey: string | undefined, jobTokenDigest: string): NodeTokenScope | undefined {
  const m = presented === undefined || !signingKey ? null : NODE_TOKEN.exec(presented);
  if (!m) return undefined;
  const scope = { node: Number(m[1]), incarnation: Number(m[2]) };
  const expected = Buffer.from(nodeTokenMac(signingKey!, jobTokenDigest, scope.node, scope.incarnation), 'ascii');
  return timingSafeEqual(Buffer.from(m[3]!, 'ascii'), expected) ? scope : undefined;
}

/** What the store keeps for a token: `sha256:<64 hex>`. */
export function tokenDigest(token: string): string {
  return PREFIX + sha256(token).toString('hex');
}

export function isTokenDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** The digest's hex part, e.g. for keys derived from a run (never the token's own characters). */
export function digestHex(digest: string): string {
  return digest.startsWith(PREFIX) ? digest.slice(PREFIX.length) : digest;
}

/**
 * Whether `presented` is the token whose digest is `digest`. Hashes the presented token and
 * compares the two digests in constant time, so neither the digest's nor the token's bytes leak
 * through timing. A presented digest does not pass: it is hashed like any other string.
 */
export function tokenMatches(presented: string | undefined, digest: string): boolean {
  if (presented === undefined || presented === '' || !isTokenDigest(digest)) return false;
  const expected = Buffer.from(digestHex(digest), 'hex');
  return timingSafeEqual(sha256(presented), expected);
}

/**
 * Whether `presented` equals `secret` (a configured secret such as the operator token), in
 * constant time: both sides are hashed to equal-length digests first, so the comparison time
 * says nothing about the secret's length or its first differing byte.
 */
export function secretMatches(presented: string | undefined, secret: string | undefined): boolean {
  if (!presented || !secret) return false;
  return timingSafeEqual(sha256(presented), sha256(secret));
}

/**
 * The token of an `Authorization: Bearer <token>` header; undefined for no header or another
 * scheme. The scheme name is case-insensitive (RFC 9110 §11.1), one space before the token.
 */
export function bearerOf(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^bearer (.+)$/i.exec(header)?.[1];
}
