// Brain configurations: brainConfigSync publishes each source's configs as a numbered
// snapshot; the Brain API matches jobs against the latest snapshot of every source.
import { fromJson, isDuplicateKey, Repository, toJson, type Trx } from './repository.ts';
import type { BrainConfigRow, BrainConfigSnapshotRow } from './schema.ts';

export interface BrainConfig extends Omit<BrainConfigRow, 'include' | 'exclude' | 'configure'> {
  include: unknown;
  exclude: unknown;
  configure: unknown;
}

export interface NewBrainConfig {
  name: string;
  include: unknown;
  exclude: unknown;
  configure: unknown;
  priority: number;
}

export type BrainConfigSnapshot = BrainConfigSnapshotRow;

function toConfig(row: BrainConfigRow): BrainConfig {
  return {
    ...row,
    include: fromJson(row.include),
    exclude: fromJson(row.exclude),
    configure: fromJson(row.configure),
  };
}

export class BrainConfigsRepository extends Repository {
  /**
   * Stores `configs` as version `version` of `source`, all at once. False (nothing written)
   * when that version was published already, so a retried sync is harmless.
   */
  async publishSnapshot(source: string, version: number, configs: NewBrainConfig[], trx?: Trx): Promise<boolean> {
    return this.inTransaction(trx, async (t) => {
      const now = this.now();
      try {
        await t.insertInto('brainConfigSnapshots').values({ source, version, publishedAt: now }).execute();
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
      if (configs.length > 0) {
        await t
          .insertInto('brainConfigs')
          .values(
            configs.map((c) => ({
              source,
              version,
              name: c.name,
              include: toJson(c.include),
              exclude: toJson(c.exclude),
              configure: toJson(c.configure),
              priority: c.priority,
              createdAt: now,
            })),
          )
          .execute();
      }
      return true;
    });
  }

  /** The source's newest snapshot. */
  async latestSnapshot(source: string, trx?: Trx): Promise<BrainConfigSnapshot | undefined> {
    return this.q(trx)
      .selectFrom('brainConfigSnapshots')
      .selectAll()
      .where('source', '=', source)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  /** One snapshot's configs, highest priority first. */
  async listSnapshot(source: string, version: number, trx?: Trx): Promise<BrainConfig[]> {
    const rows = await this.q(trx)
      .selectFrom('brainConfigs')
      .selectAll()
      .where('source', '=', source)
      .where('version', '=', version)
      .orderBy('priority', 'desc')
      .orderBy('id')
      .execute();
    return rows.map(toConfig);
  }

  /** The configs of every source's newest snapshot, highest priority first. */
  async listLatest(trx?: Trx): Promise<BrainConfig[]> {
    const rows = await this.q(trx)
      .selectFrom('brainConfigs as c')
      .innerJoin(
        (eb) =>
          eb
            .selectFrom('brainConfigSnapshots')
            .select((s) => ['source', s.fn.max('version').as('version')])
            .groupBy('source')
            .as('latest'),
        (join) => join.onRef('latest.source', '=', 'c.source').onRef('latest.version', '=', 'c.version'),
      )
      .selectAll('c')
      .orderBy('c.priority', 'desc')
      .orderBy('c.source')
      .orderBy('c.id')
      .execute();
    return rows.map(toConfig);
  }
}
