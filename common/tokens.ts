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
