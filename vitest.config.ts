import { defineConfig } from 'vitest/config';

const exclude = ['node_modules/**', 'dist/**', '.tools/**', '.rover/**'];
/**
 * Files outside test/ that start long-lived processes or time things: agents spawn trainers and
 * time heartbeats, hangs and standbys; the trainer and Ray tests run Python; long polls wait; the
 * overload gate's tests stall the event loop for set times and expect the lag they measure.
 */
const sequentialOutsideTest = ['agent/**/*.test.ts', 'examples/**/*.test.ts', 'cluster/ray/**/*.test.ts', 'api/longPoll.test.ts', 'api/overload.test.ts'];
/** The files of test/ that start nothing and time nothing: a text parser and history replay. */
const parallelInTest = ['promText', 'replay'];

const timeouts = { testTimeout: 120_000, hookTimeout: 120_000 };

export default defineConfig({
  test: {
    // The root's globalSetup runs once per run: one Temporal dev server, whose address both
    // projects read. The projects do not `extends: true` the root: they would inherit and run
    // the globalSetup again, one more server each.
    globalSetup: ['test/globalSetup.ts'],
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: [...exclude, '**/*.e2e.test.ts', `test/!(${parallelInTest.join('|')}).test.ts`, ...sequentialOutsideTest],
          ...timeouts,
          // Two files at a time even on 2 cores (the default there is one worker); the whole
          // group finishes before the e2e group starts.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['**/*.e2e.test.ts', 'test/*.test.ts', ...sequentialOutsideTest],
          exclude: [...exclude, `test/{${parallelInTest.join(',')}}.test.ts`],
          ...timeouts,
          // End-to-end files start real processes (worker, API, agents, trainers) and several
          // tests are timing-sensitive: one file at a time.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
