// Owns the checks that keep JSON numbers exact: no non-finite values, no integers rounded by a double.
//
// Payloads are stored as JSON text produced by JSON.stringify, which turns NaN and ±Infinity into null, and
// JSON.parse rounds integer literals beyond ±2^53 to the nearest double. Both would change a client's data
// without telling it, so they are refused instead.

/** Integer literals of 16+ digits are the only ones that can exceed 2^53 (9007199254740992, 16 digits). */
const longDigitRun = /\d{16}/;
const integerLiteral = /^-?\d+$/;

/**
 * Parses JSON text like JSON.parse, and reports the first integer literal that a double cannot hold exactly
 * (e.g. 12345678901234567890). Texts without a 16-digit run take the plain JSON.parse path: no reviver cost.
 */
export function parseJsonExact(text: string): { value: unknown; inexact: string | null } {
  if (!longDigitRun.test(text)) return { value: JSON.parse(text), inexact: null };
  let inexact: string | null = null;
  const value = JSON.parse(text, (_key, v: unknown, context?: { source?: string }) => {
    if (inexact === null && typeof v === 'number' && context?.source !== undefined) {
      const source = context.source;
      if (integerLiteral.test(source) && Number.isFinite(v) && BigInt(source) !== BigInt(v)) inexact = source;
    }
    return v;
  });
  return { value, inexact };
}

/**
 * The path (e.g. `.a[2]`) of the first NaN or ±Infinity inside `value`, or null. Only called when the JSON
 * text holds `null` somewhere, since that is the only trace JSON.stringify leaves of a non-finite number.
 */
export function findNonFinite(value: unknown, path = ''): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : path === '' ? '(the value)' : path;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonFinite(value[i], `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    const found = findNonFinite((value as Record<string, unknown>)[key], `${path}.${key}`);
    if (found !== null) return found;
  }
  return null;
}
