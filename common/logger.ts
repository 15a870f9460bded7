// Structured logs: one JSON line per event, with job/node/incarnation fields where known.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.ROVER_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
