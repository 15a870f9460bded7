// The store's brain_config_entries table (MySQL in production) as a configuration source.
import type { Store } from '../../store/index.ts';
import { mergeReads, parseBrainConfigs, type SourceRead } from '../config/schema.ts';
import type { ConfigSource } from './types.ts';

export class SqlTableSource implements ConfigSource {
  readonly location = 'table brain_config_entries';

  constructor(
    readonly name: string,
    private readonly store: Store,
  ) {}

  /** A bad row is rejected alone, named by its name. */
  async read(): Promise<SourceRead> {
    const rows = await this.store.brainConfigEntries.list();
    return mergeReads(
      rows.map((row) => parseBrainConfigs({ name: row.name, priority: row.priority, include: row.include, exclude: row.exclude, configure: row.configure }, `row "${row.name}"`)),
    );
  }
}
