// The store's brain_config_entries table (MySQL in production) as a configuration source.
import type { Store } from '../../store/index.ts';
import { BrainConfigError, parseBrainConfigs, type BrainConfigInput } from '../config/schema.ts';
import type { ConfigSource } from './types.ts';

export class SqlTableSource implements ConfigSource {
  readonly location = 'table brain_config_entries';

  constructor(
    readonly name: string,
    private readonly store: Store,
  ) {}

  async read(): Promise<BrainConfigInput[]> {
    const rows = await this.store.brainConfigEntries.list();
    const problems: string[] = [];
    const configs: BrainConfigInput[] = [];
    for (const row of rows) {
      try {
        configs.push(...parseBrainConfigs({ name: row.name, priority: row.priority, include: row.include, exclude: row.exclude, configure: row.configure }, `row "${row.name}"`));
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (problems.length > 0) throw new BrainConfigError(problems.join('; '));
    return configs;
  }
}
