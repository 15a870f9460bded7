// Which failures end a job at once, and the reason the job then shows.
import { describe, expect, it } from 'vitest';
import {
  UNHEALABLE_FAILURE_TYPES, UNHEALABLE_TYPE_LIST, configurationError, notFoundError, permissionError, recoveredLine, retryingLine, unhealableKindOf, unhealableReason,
} from './unhealableErrors.ts';

describe('unhealable errors', () => {
  it.each([
    ['configuration', configurationError('x'), 'RoverConfigurationError'],
    ['permission', permissionError('x'), 'RoverPermissionError'],
    ['notFound', notFoundError('x'), 'RoverNotFoundError'],
  ] as const)('a %s error carries its failure type as its name, so Temporal sees the type', (kind, err, type) => {
    expect(err.kind).toBe(kind);
    expect(err.name).toBe(type);
    expect(UNHEALABLE_FAILURE_TYPES[kind]).toBe(type);
    expect(unhealableKindOf(type)).toBe(kind);
  });

  it('knows no other type: plain errors, timeouts and the job\'s own failures stay retryable or their own', () => {
    for (const t of ['Error', 'TypeError', 'JobFailed', 'ScaleRefused', '', undefined, null]) expect(unhealableKindOf(t)).toBeUndefined();
    expect(UNHEALABLE_TYPE_LIST).toEqual(['RoverConfigurationError', 'RoverPermissionError', 'RoverNotFoundError']);
  });

  it('words the job reason with the step that failed, the kind and the fix the message gives', () => {
    const reason = unhealableReason('configuration', 'launchNodes', 'backend kubernetes is not configured on this worker: set ROVER_KUBECONFIG');
    expect(reason).toBe('cannot launch nodes (configuration error): backend kubernetes is not configured on this worker: set ROVER_KUBECONFIG');
    expect(unhealableReason('permission', 'somethingNew', 'HTTP 403')).toBe('cannot run somethingNew (permission denied): HTTP 403');
  });

  it('says when a failing step succeeded again', () => {
    expect(recoveredLine('launchNodes', 1)).toBe('launchNodes succeeded after 1 failed call');
    expect(recoveredLine('openRound', 3)).toBe('openRound succeeded after 3 failed calls');
  });

  it('says which activity is retrying, when, and why', () => {
    expect(retryingLine('launchNodes', 'connect ECONNREFUSED 127.0.0.1:6443', 10)).toBe(
      'launchNodes is failing and will be retried in 10 s: connect ECONNREFUSED 127.0.0.1:6443',
    );
  });
});
