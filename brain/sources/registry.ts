// Configuration sources from the config's source list: `name=kind:location`, comma-separated.
// Kinds: `yaml:<dir>` (a YAML directory), `table` (the store's brain_config_entries table);
// other kinds (e.g. `configmap:<namespace>/<name>`) are registered by their modules.
import path from 'node:path';
import { repoRoot } from '../../common/repoRoot.ts';
import type { Store } from '../../store/index.ts';
import { SqlTableSource } from './sqlTable.ts';
import type { ConfigSource } from './types.ts';
import { YamlDirSource } from './yamlDir.ts';

/** The YAML directory shipped with Rover: the embedded default source. */
export const BUILTIN_CONFIG_DIR = path.join(repoRoot, 'brain/defaults');
export const DEFAULT_SOURCES = `default=yaml:${BUILTIN_CONFIG_DIR}`;

export interface SourceDef {
  name: string;
  kind: string;
  location: string;
}

export type SourceFactory = (def: SourceDef, deps: { store: Store }) => ConfigSource;

const factories: Record<string, SourceFactory> = {
  yaml: (def) => new YamlDirSource(def.name, def.location),
  table: (def, { store }) => new SqlTableSource(def.name, store),
};

/** Lets another module (e.g. the Kubernetes ConfigMap source) add a kind. */
export function registerSourceKind(kind: string, factory: SourceFactory): void {
  factories[kind] = factory;
}

export function parseSourceList(text: string | undefined): SourceDef[] {
  const defs: SourceDef[] = [];
  for (const part of (text ?? DEFAULT_SOURCES).split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z0-9][a-z0-9-]{0,62})=([a-z]+)(?::(.*))?$/.exec(part);
    if (!m) throw new Error(`ROVER_BRAIN_SOURCES: "${part}" is not name=kind[:location] (e.g. default=yaml:/etc/rover/brain, db=table)`);
    const [, name, kind, location] = m as unknown as [string, string, string, string | undefined];
    if (defs.some((d) => d.name === name)) throw new Error(`ROVER_BRAIN_SOURCES: source name "${name}" is used twice`);
    if (kind === 'yaml' && !location) throw new Error(`ROVER_BRAIN_SOURCES: "${part}" needs a directory (yaml:<dir>)`);
    defs.push({ name, kind, location: location ?? '' });
  }
  return defs;
}

export function createSource(def: SourceDef, deps: { store: Store }): ConfigSource {
  const factory = factories[def.kind];
  if (!factory) throw new Error(`ROVER_BRAIN_SOURCES: unknown kind "${def.kind}" for source "${def.name}"; known: ${Object.keys(factories).join(', ')}`);
  return factory(def, deps);
}
