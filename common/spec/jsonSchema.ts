// JSON Schema of the job spec's input side, for editors (yaml-language-server, VS Code).
// `npx tsx common/spec/jsonSchema.ts --write` regenerates deploy/schema/elasticjob.schema.json;
// a test fails when the committed file differs from a fresh generation.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { repoRoot } from '../repoRoot.ts';
import { jobSpecSchema } from './schema.ts';

export const JSON_SCHEMA_FILE = path.join(repoRoot, 'deploy/schema/elasticjob.schema.json');
const SCHEMA_ID = 'https://rover.dev/schema/elasticjob.schema.json';

/** The schema as the committed file's text. Input side: fields with defaults are optional. */
export function renderJobSpecJsonSchema(): string {
  const schema = z.toJSONSchema(jobSpecSchema, { io: 'input', target: 'draft-07' });
  return `${JSON.stringify({ ...schema, $id: SCHEMA_ID }, null, 2)}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--write')) {
    writeFileSync(JSON_SCHEMA_FILE, renderJobSpecJsonSchema());
    console.log(`wrote ${JSON_SCHEMA_FILE}`);
  } else {
    process.stdout.write(renderJobSpecJsonSchema());
  }
}
