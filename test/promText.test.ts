// The test-side Prometheus text parser accepts what a Prometheus server accepts and names the bad line.
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleSum } from './promText.ts';

describe('parsePrometheusText', () => {
  it('reads prom-client output: counters, labelled histograms, escaped label values', async () => {
    const registry = new Registry();
    new Counter({ name: 'x_total', help: 'x', labelNames: ['why'], registers: [registry] }).inc({ why: 'a "quoted"\nline' }, 2);
    new Histogram({ name: 'lat_seconds', help: 'l', buckets: [1], registers: [registry] }).observe(0.5);
    const exp = parsePrometheusText(await registry.metrics());
    expect(exp.types.get('lat_seconds')).toBe('histogram');
    expect(sampleSum(exp, 'x_total', { why: 'a "quoted"\nline' })).toBe(2);
    expect(sampleSum(exp, 'lat_seconds_bucket', { le: '+Inf' })).toBe(1);
  });

  it('reads NaN in any case, as Prometheus does (prom-client writes an empty mean as "Nan")', () => {
    const exp = parsePrometheusText('# TYPE lag gauge\nlag Nan\n# TYPE up gauge\nup NaN\n');
    expect(sampleSum(exp, 'lag', {})).toBeNaN();
    expect(sampleSum(exp, 'up', {})).toBeNaN();
  });

  it.each([
    ['a sample without a TYPE', 'foo 1\n', 'no TYPE'],
    ['a bad value', '# TYPE foo gauge\nfoo one\n', 'line 2: bad value'],
    ['broken labels', '# TYPE foo gauge\nfoo{a=1} 1\n', 'line 2: bad labels'],
    ['an unknown type', '# TYPE foo meter\n', 'line 1: unknown type'],
  ])('rejects %s', (_name, text, message) => {
    expect(() => parsePrometheusText(text)).toThrow(message);
  });
});
