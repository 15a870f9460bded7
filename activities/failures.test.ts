// Unhealable errors leave an activity as non-retryable failures of their type; others unchanged.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { configurationError, permissionError } from '../common/unhealableErrors.ts';
import { asActivityFailure, withFailureTypes } from './failures.ts';

describe('activity failures', () => {
  it('turns an unhealable error into a non-retryable ApplicationFailure of its type and message', () => {
    const failure = asActivityFailure(permissionError('pods is forbidden'));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'RoverPermissionError', message: 'pods is forbidden', nonRetryable: true });
  });

  it('leaves a transient error as it is, so Temporal retries it', () => {
    const err = new Error('connect ECONNREFUSED 127.0.0.1:6443');
    expect(asActivityFailure(err)).toBe(err);
  });

  it('wraps every activity of a set, keeping results and retryable errors', async () => {
    const acts = withFailureTypes({
      ok: async (n: number) => n + 1,
      unconfigured: async () => {
        throw configurationError('backend kubernetes is not configured on this worker');
      },
      flaky: async () => {
        throw new Error('store unreachable');
      },
    });
    await expect(acts.ok(1)).resolves.toBe(2);
    await expect(acts.unconfigured()).rejects.toMatchObject({ type: 'RoverConfigurationError', nonRetryable: true });
    await expect(acts.flaky()).rejects.toThrow(/^store unreachable$/);
    await expect(acts.flaky()).rejects.not.toBeInstanceOf(ApplicationFailure);
  });
});
