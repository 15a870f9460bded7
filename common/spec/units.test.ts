import { describe, expect, it } from 'vitest';
import { formatDuration, parseCpu, parseDuration, parseMemory } from './units.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
    ['1.5s', 1500],
    [' 10s ', 10_000],
    ['0s', 0],
  ])('reads %j as %d ms', (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  it.each(['5', '5 minutes', '1d', 's', '1h-30m', '-5s', '', '1e3s'])('rejects %j and lists the accepted forms', (input) => {
    const result = parseDuration(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('1h30m');
  });

  it.each([10, 0, -1, 1.5, Number.NaN, Infinity])('rejects the bare number %d and asks for a unit', (input) => {
    const result = parseDuration(input);
    expect(!result.ok && result.message).toMatch(/^give a unit: /);
  });

  it('shows the number with units, since a bare number once meant milliseconds', () => {
    expect(parseDuration(10)).toEqual({ ok: false, message: 'give a unit: 10s, 10ms, 5m, 1h30m (got the bare number 10; a duration needs one of ms, s, m, h)' });
    expect(parseDuration('10')).toEqual(parseDuration(10));
  });

  it('refuses a long string without running the pattern over it', () => {
    const result = parseDuration('1'.repeat(100_000) + 'x');
    expect(!result.ok && result.message).toMatch(/^not a duration/);
  });

  it('rounds to whole milliseconds', () => {
    expect(parseDuration('1.0004s')).toEqual({ ok: true, value: 1000 });
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [30_000, '30s'],
    [5_400_000, '1h30m'],
    [90_250, '1m30s250ms'],
  ])('renders %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toEqual({ ok: true, value: ms });
  });
});

describe('parseMemory', () => {
  it.each([
    ['512Mi', 512 * 2 ** 20],
    ['2Gi', 2 * 2 ** 30],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['1G', 1e9],
    ['500k', 500_000],
    ['1e3', 1000],
    ['1Ti', 2 ** 40],
    ['123', 123],
    [4096, 4096],
    ['0.5', 1], // Kubernetes rounds fractional bytes up
  ])('reads %j as %d bytes', (input, bytes) => {
    expect(parseMemory(input)).toEqual({ ok: true, value: bytes });
  });

  it.each([
    ['512m', 'milli'],
    ['2GB', 'write G'],
    ['2gb', 'write G'],
    ['1K', 'Ki'],
    ['lots', '2Gi'],
    ['-1Gi', '2Gi'],
    ['2 Gi', '2Gi'],
    ['', '2Gi'],
  ])('rejects %j with a hint about %s', (input, hint) => {
    const result = parseMemory(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain(hint);
  });

  it.each([-1, 1.5])('rejects the number %d', (input) => {
    expect(parseMemory(input).ok).toBe(false);
  });

  it('rejects quantities beyond the safe integer range', () => {
    expect(parseMemory('100Ei').ok).toBe(false);
  });
});

describe('parseCpu', () => {
  it.each([
    [2, 2],
    [0.5, 0.5],
    ['500m', 0.5],
    ['2', 2],
    ['1.5', 1.5],
  ])('reads %j as %d cores', (input, cores) => {
    expect(parseCpu(input)).toEqual({ ok: true, value: cores });
  });

  it.each(['two', '500 m', '1c', -1, Number.NaN])('rejects %j', (input) => {
    expect(parseCpu(input).ok).toBe(false);
  });
});
