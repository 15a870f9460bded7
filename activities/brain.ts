// Activities of the brainConfigSync workflow: read a source, publish a snapshot when it changed.
import type { BrainActivities, SyncResult } from '../common/brainActivities.ts';
import type { Logger } from '../common/logger.ts';
import type { ConfigSource, SourceRead } from '../brain/sources/types.ts';
import type { Store } from '../store/index.ts';

export interface BrainActivityDeps {
  store: Store;
  sources: ConfigSource[];
  logger: Logger;
}

/** A canonical form of a configuration, for "did the source change?" */
function canonical(c: { name: string; priority: number; include: unknown; exclude: unknown; configure: unknown }): string {
  return JSON.stringify([c.name, c.priority, c.include, c.exclude, c.configure]);
}

/** Problems kept in the sync workflow's state (it travels through continue-as-new and every status query). */
export const MAX_REJECTED_LINES = 50;

/** The read's problems, at most MAX_REJECTED_LINES of them, the last line saying how to see the rest. */
function boundedProblems(errors: string[], location: string): string[] {
  if (errors.length <= MAX_REJECTED_LINES) return errors;
  const more = errors.length - (MAX_REJECTED_LINES - 1);
  return [...errors.slice(0, MAX_REJECTED_LINES - 1), `… and ${more} more problems in ${location} (\`rover brain config validate\` on the files lists them all)`];
}

export function createBrainActivities({ store, sources, logger }: BrainActivityDeps): BrainActivities {
  return {
    async syncBrainSource({ source: name }): Promise<SyncResult> {
      const latest = await store.brainConfigs.latestSnapshot(name);
      const served = latest ? await store.brainConfigs.listSnapshot(name, latest.version) : [];
      const keep = (error: string): SyncResult => ({ ok: false, version: latest?.version ?? null, changed: false, configs: served.length, error });
      const source = sources.find((s) => s.name === name);
      if (!source) return keep(`no source named "${name}" in this worker's ROVER_BRAIN_SOURCES (${sources.map((s) => s.name).join(', ') || 'none'})`);
      let read: SourceRead;
      try {
        read = await source.read();
      } catch (err) {
        const error = `${source.location}: ${err instanceof Error ? err.message : String(err)}`;
        logger.warn({ source: name, error }, 'brain config source unreadable; keeping the last good snapshot');
        return keep(error);
      }
      // Rejected entries are left out alone; every valid one is served.
      const configs = read.configs.map((c) => c.config);
      const rejected = boundedProblems(read.errors, source.location);
      if (rejected.length > 0) logger.warn({ source: name, rejected }, 'brain config entries rejected; the valid ones are served');
      const done = (version: number, changed: boolean, count: number): SyncResult => ({ ok: rejected.length === 0, version, changed, configs: count, error: null, rejected });
      const before = served.map(canonical).sort();
      const after = configs.map(canonical).sort();
      if (latest && before.length === after.length && before.every((c, i) => c === after[i])) return done(latest.version, false, served.length);
      const version = (latest?.version ?? 0) + 1;
      const published = await store.brainConfigs.publishSnapshot(name, version, configs);
      if (published) logger.info({ source: name, version, configs: configs.length }, 'brain config snapshot published');
      return done(version, published, configs.length);
    },
  };
}
