// HTTP errors the routes throw; the server's error handler turns them into JSON 4xx replies.
import type { z } from 'zod';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** Formats zod issues as `field.path: message` lines, naming the body root `body`. */
export function describeIssues(error: z.ZodError, root: string): string[] {
  return error.issues.map((issue) => {
    const where = [root, ...issue.path.map(String)].join('.');
    return `${where}: ${issue.message}`;
  });
}

/** Parses an external input with its schema or throws a 400 that lists every problem. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, root: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const problems = describeIssues(result.error, root);
    throw new HttpError(400, 'invalid_request', problems.join('; '), problems);
  }
  return result.data;
}
