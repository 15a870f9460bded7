// The SQL-table source of Brain configurations: operators insert/update rows (or use
// `rover brain config put`); the brainConfigSync workflow of the `table` source reads them.
import { fromJson, Repository, toJson, type Trx } from './repository.ts';
import type { BrainConfigEntryRow } from './schema.ts';

/** The JSON columns of a configuration row. */
export const BRAIN_CONFIG_JSON_COLUMNS = ['include', 'exclude', 'configure'] as const;

export interface BrainConfigEntry extends Omit<BrainConfigEntryRow, 'include' | 'exclude' | 'configure'> {
  include: unknown;
  exclude: unknown;
  configure: unknown;
  /** Columns whose text is not JSON (their value above is that text), for the source to report. */
  unparsable: (typeof BRAIN_CONFIG_JSON_COLUMNS)[number][];
}

export class BrainConfigEntriesRepository extends Repository {
  /** Every row, by name. JSON that does not parse is returned as the raw text, for the source to report. */
  async list(trx?: Trx): Promise<BrainConfigEntry[]> {
    const rows = await this.q(trx).selectFrom('brainConfigEntries').selectAll().orderBy('name').execute();
    return rows.map((r) => {
      const entry: BrainConfigEntry = { ...r, unparsable: [] };
      for (const column of BRAIN_CONFIG_JSON_COLUMNS) {
        try {
          entry[column] = fromJson(r[column]);
        } catch {
          entry.unparsable.push(column);
        }
      }
      return entry;
    });
  }

  async put(entry: { name: string; priority: number; include: unknown; exclude: unknown; configure: unknown }, trx?: Trx): Promise<void> {
    const row = {
      name: entry.name,
      priority: entry.priority,
      include: toJson(entry.include),
      exclude: toJson(entry.exclude),
      configure: toJson(entry.configure),
      updatedAt: this.now(),
    };
    await this.inTransaction(trx, async (t) => {
      const found = await t.selectFrom('brainConfigEntries').select('name').where('name', '=', entry.name).executeTakeFirst();
      if (found) await t.updateTable('brainConfigEntries').set(row).where('name', '=', entry.name).execute();
      else await t.insertInto('brainConfigEntries').values(row).execute();
    });
  }

  async remove(name: string, trx?: Trx): Promise<boolean> {
    const r = await this.q(trx).deleteFrom('brainConfigEntries').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
