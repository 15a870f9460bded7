// A directory of YAML files, each holding one configuration, a list, or {configs: [...]}.
// Read in file-name order; a broken file or entry is rejected alone, the rest is served.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BrainConfigError, mergeReads, parseBrainConfigYaml, type SourceRead } from '../config/schema.ts';
import type { ConfigSource } from './types.ts';

export class YamlDirSource implements ConfigSource {
  constructor(
    readonly name: string,
    readonly location: string,
  ) {}

  async read(): Promise<SourceRead> {
    let entries: string[];
    try {
      entries = await readdir(this.location);
    } catch (err) {
      throw new BrainConfigError(`${this.location}: cannot read the directory: ${(err as Error).message}`);
    }
    const files = entries.filter((f) => /\.ya?ml$/i.test(f) && !f.startsWith('.')).sort();
    const reads: SourceRead[] = [];
    for (const file of files) {
      // Named by its path, so an error says which file to open.
      const where = path.join(this.location, file);
      let text: string;
      try {
        text = await readFile(where, 'utf8');
      } catch (err) {
        reads.push({ configs: [], errors: [`${where}: cannot read it: ${(err as Error).message}`] });
        continue;
      }
      reads.push(parseBrainConfigYaml(text, where));
    }
    return mergeReads(reads);
  }
}
