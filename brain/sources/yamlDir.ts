// A directory of YAML files, each holding one configuration, a list, or {configs: [...]}.
// Read in file-name order; any unreadable or invalid file fails the whole read, so a broken
// edit never publishes half a directory.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { BrainConfigError, checkUniqueNames, parseBrainConfigs, type BrainConfigInput } from '../config/schema.ts';
import type { ConfigSource } from './types.ts';

export class YamlDirSource implements ConfigSource {
  constructor(
    readonly name: string,
    readonly location: string,
  ) {}

  async read(): Promise<BrainConfigInput[]> {
    let entries: string[];
    try {
      entries = await readdir(this.location);
    } catch (err) {
      throw new BrainConfigError(`${this.location}: cannot read the directory: ${(err as Error).message}`);
    }
    const files = entries.filter((f) => /\.ya?ml$/i.test(f) && !f.startsWith('.')).sort();
    const configs: BrainConfigInput[] = [];
    for (const file of files) {
      const full = path.join(this.location, file);
      const doc = parseDocument(await readFile(full, 'utf8'));
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        const where = e.linePos?.[0] ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
        throw new BrainConfigError(`${file}${where}: invalid YAML: ${e.message.split('\n')[0]}`);
      }
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) continue;
      configs.push(...parseBrainConfigs(value, file));
    }
    checkUniqueNames(configs, this.location);
    return configs;
  }
}
