// The store's brain_config_entries table (MySQL in production) as a configuration source.
import type { Store } from '../../store/index.ts';
import { shown } from '../config/issues.ts';
import { mergeReads, parseBrainConfig, type SourceRead } from '../config/schema.ts';
import type { ConfigSource } from './types.ts';

export class SqlTableSource implements ConfigSource {
  readonly location = 'table brain_config_entries';

  constructor(
    readonly name: string,
    private readonly store: Store,
  ) {}

  /**
   * A bad row is rejected alone, named by its name (the table's key, so two rows never share
   * one): each of its problems as `row "<name>": <column or field>: <reason>`.
   */
  async read(): Promise<SourceRead> {
    const rows = await this.store.brainConfigEntries.list();
    return mergeReads(
      rows.map((row): SourceRead => {
        const where = `row "${row.name}"`;
        if (row.unparsable.length > 0) return { configs: [], errors: row.unparsable.map((column) => `${where}: ${column}: not valid JSON (got ${shown(row[column])})`) };
        const parsed = parseBrainConfig({ name: row.name, priority: row.priority, include: row.include, exclude: row.exclude, configure: row.configure }, where);
        return parsed.config ? { configs: [{ config: parsed.config, where }], errors: [] } : { configs: [], errors: parsed.errors };
      }),
    );
  }
}
