// zod issues of a Brain configuration as one line each, in the words a user fixing the file
// needs: the field path, what it must be, and what it was (`configure.optimizer.oomFactor: must
// be a number in [1, 100] (got 0.5)`).
import type { z } from 'zod';

/** The fields an object at `path` may have, for "unknown field" messages. */
export type KnownFields = (path: readonly PropertyKey[]) => readonly string[] | undefined;

/** A value as the user wrote it, short: numbers and strings as JSON, objects cut at 60 characters. */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function fieldOf(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/**
 * One `<field>: <reason> (got <value>)` line per problem (`<reason>` alone for the entry as a
 * whole); several issues of one field with one message are said once.
 */
export function issueLines(issues: readonly z.core.$ZodIssue[], known: KnownFields): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const fields = known(issue.path);
      for (const key of issue.keys) {
        lines.push(`${fieldOf([...issue.path, key])}: unknown field${fields ? ` (known: ${fields.join(', ')})` : ''}`);
      }
      continue;
    }
    const field = fieldOf(issue.path);
    let reason: string;
    if (issue.code === 'invalid_type' && issue.input === undefined) reason = 'required';
    else if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input: expected')) reason = `must be ${article(issue.expected)}`;
    else reason = issue.message;
    if (issue.input !== undefined && !reason.includes('(got ')) reason += ` (got ${shown(issue.input)})`;
    const line = field ? `${field}: ${reason}` : reason;
    if (!lines.includes(line)) lines.push(line);
  }
  return lines;
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
