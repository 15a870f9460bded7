import { describe, expect, it } from 'vitest';
import { digestHex, isTokenDigest, secretMatches, tokenDigest, tokenMatches } from './tokens.ts';

describe('job tokens at rest', () => {
  const token = '6f1c2a4e-93b1-4d7e-8a55-0c9f3e2b7d41';

  it('stores a sha256 digest that is not the token and does not contain it', () => {
    const digest = tokenDigest(token);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digest).not.toContain(token);
    expect(isTokenDigest(digest)).toBe(true);
    expect(isTokenDigest(token)).toBe(false);
    expect(digestHex(digest)).toHaveLength(64);
  });

  it('accepts the token and refuses a wrong one, an empty one, none, and the digest itself', () => {
    const digest = tokenDigest(token);
    expect(tokenMatches(token, digest)).toBe(true);
    expect(tokenMatches(`${token}x`, digest)).toBe(false);
    expect(tokenMatches('', digest)).toBe(false);
    expect(tokenMatches(undefined, digest)).toBe(false);
    expect(tokenMatches(digest, digest)).toBe(false);
    expect(tokenMatches(digestHex(digest), digest)).toBe(false);
  });

  it('never matches against a stored value that is not a digest (a plaintext row left behind)', () => {
    expect(tokenMatches(token, token)).toBe(false);
  });

  it('compares configured secrets without caring about their length', () => {
    expect(secretMatches('operator-secret-123', 'operator-secret-123')).toBe(true);
    expect(secretMatches('operator-secret-12', 'operator-secret-123')).toBe(false);
    expect(secretMatches('operator-secret-123', undefined)).toBe(false);
    expect(secretMatches(undefined, 'operator-secret-123')).toBe(false);
    expect(secretMatches('', '')).toBe(false);
  });
});
