// Parsers for the human-friendly units a job spec accepts: durations ('30s', '1h30m'),
// memory quantities ('2Gi', '512Mi') and CPU quantities ('500m', 2). Pure; no zod here.

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export const DURATION_FORMS = '500ms, 30s, 5m, 1h or 1h30m';
/** One or more <number><unit> groups, e.g. 1h30m or 1.5s. Units: ms, s, m, h. */
export const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const MS_PER_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Longer than any sensible duration; checked before the pattern runs. */
const MAX_DURATION_TEXT = 64;

/**
 * A duration string → whole milliseconds (rounded to the nearest). A bare number is refused:
 * `10` could mean seconds or milliseconds, and guessing wrong is a silent 1000× mistake.
 */
export function parseDuration(input: string | number): Parsed<number> {
  if (typeof input === 'number') return { ok: false, message: bareNumberDuration(input) };
  const text = input.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return { ok: false, message: bareNumberDuration(Number(text)) };
  if (text.length > MAX_DURATION_TEXT || !DURATION_PATTERN.test(text)) {
    return { ok: false, message: `not a duration (got ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}); write ${DURATION_FORMS}` };
  }
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * MS_PER_UNIT[unit!]!;
  ms = Math.round(ms);
  if (!Number.isSafeInteger(ms)) return { ok: false, message: `duration ${JSON.stringify(input)} is too long` };
  return { ok: true, value: ms };
}

/** The message for `timeout: 10`: show the number with units, so the fix is a copy away. */
function bareNumberDuration(n: number): string {
  const examples = Number.isFinite(n) && n > 0 ? `${n}s, ${n}ms, 5m, 1h30m` : DURATION_FORMS;
  return `give a unit: ${examples} (got the bare number ${n}; a duration needs one of ms, s, m, h)`;
}

/** Renders milliseconds the way a user would write them: 90000 → '1m30s', 500 → '500ms'. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const unit of ['h', 'm', 's', 'ms']) {
    const size = MS_PER_UNIT[unit]!;
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  return parts.join('');
}

export const MEMORY_FORMS = "a whole number of bytes or a Kubernetes quantity like 512Mi, 2Gi, 1.5G (suffixes k M G T P E, Ki Mi Gi Ti Pi Ei)";
/** Kubernetes-style quantity: decimal number, optional exponent, optional suffix. */
export const MEMORY_PATTERN = /^(?:\d+(?:\.\d+)?(?:[eE]\d+)?)(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const QUANTITY_PARTS = /^(\d+(?:\.\d+)?(?:[eE]\d+)?)([A-Za-z]*)$/;
const BYTES_PER_SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
/** Suffixes people write by habit from other tools, and what they should write instead. */
const SUFFIX_HINTS: Record<string, string> = {
  m: "'m' means milli (1/1000) in Kubernetes quantities; for mebibytes write Mi",
  K: "write k (1000) or Ki (1024)",
  KB: 'write k (1000) or Ki (1024)', kb: 'write k (1000) or Ki (1024)', KiB: 'write Ki',
  MB: 'write M (10^6) or Mi (2^20)', mb: 'write M (10^6) or Mi (2^20)', MiB: 'write Mi',
  GB: 'write G (10^9) or Gi (2^30)', gb: 'write G (10^9) or Gi (2^30)', GiB: 'write Gi',
  g: 'write G (10^9) or Gi (2^30)', TB: 'write T or Ti', TiB: 'write Ti',
};

/** A memory quantity → whole bytes (fractions round up, as Kubernetes does). */
export function parseMemory(input: string | number): Parsed<number> {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      return { ok: false, message: `a number means bytes and must be a whole number ≥ 0 (got ${input}); or write ${MEMORY_FORMS}` };
    }
    return { ok: true, value: input };
  }
  const text = input.trim();
  const parts = QUANTITY_PARTS.exec(text);
  const factor = parts ? BYTES_PER_SUFFIX[parts[2]!] : undefined;
  if (!parts || factor === undefined) {
    const hint = parts ? SUFFIX_HINTS[parts[2]!] : undefined;
    return { ok: false, message: `not a memory quantity (got ${JSON.stringify(input)})${hint ? `: ${hint}` : ''}; write ${MEMORY_FORMS}` };
  }
  const bytes = Math.ceil(Number(parts[1]) * factor);
  if (!Number.isSafeInteger(bytes)) return { ok: false, message: `memory ${JSON.stringify(input)} is too large` };
  return { ok: true, value: bytes };
}

export const CPU_FORMS = "a number of cores (0.5, 2) or millicores like 500m";
export const CPU_PATTERN = /^\d+(?:\.\d+)?m?$/;

/** CPU cores as a number, or a Kubernetes CPU quantity string ('500m', '2') → cores. */
export function parseCpu(input: string | number): Parsed<number> {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return { ok: false, message: `must be ${CPU_FORMS} (got ${input})` };
    return { ok: true, value: input };
  }
  const text = input.trim();
  if (!CPU_PATTERN.test(text)) return { ok: false, message: `not a CPU quantity (got ${JSON.stringify(input)}); write ${CPU_FORMS}` };
  const cores = text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
  return { ok: true, value: cores };
}
