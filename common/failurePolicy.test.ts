// The failure policy tables, row by row: which rule decides and what it does.
import { describe, expect, it } from 'vitest';
import { decide, NODE_DOWN_POLICY, PROCESS_FAILURE_POLICY, type NodeDownFacts, type ProcessFailureFacts } from './failurePolicy.ts';

describe('NODE_DOWN_POLICY', () => {
  const facts = (f: Partial<NodeDownFacts>): NodeDownFacts => ({ trigger: 'down', platformCause: false, budgetLeft: true, ...f });
  it.each([
    { name: 'a node fault within the budget: counted relaunch', facts: facts({}), rule: 'within the relaunch budget', then: { action: 'relaunch', counted: true, avoidHost: false } },
    { name: 'a node fault with the budget spent: shrink or fail', facts: facts({ budgetLeft: false }), rule: 'relaunch budget spent', then: { action: 'shrinkOrFail' } },
    { name: 'lost to the platform, budget spent: relaunched free', facts: facts({ platformCause: true, budgetLeft: false }), rule: 'lost to the platform', then: { action: 'relaunch', counted: false, avoidHost: false } },
    { name: 'a failed node check, budget spent: relaunched free, off its host', facts: facts({ trigger: 'checkFaulty', budgetLeft: false }), rule: 'failed the node check', then: { action: 'relaunch', counted: false, avoidHost: true } },
    { name: 'a straggler: counted relaunch off its host', facts: facts({ trigger: 'straggler' }), rule: 'straggler', then: { action: 'relaunch', counted: true, avoidHost: true } },
    { name: 'a straggler with the budget spent: kept', facts: facts({ trigger: 'straggler', budgetLeft: false }), rule: 'straggler, relaunch budget spent', then: { action: 'keep' } },
    { name: 'a node that never started, budget spent: shrink or fail', facts: facts({ trigger: 'pending', budgetLeft: false }), rule: 'relaunch budget spent', then: { action: 'shrinkOrFail' } },
    { name: 'a node that never started: counted relaunch', facts: facts({ trigger: 'pending' }), rule: 'within the relaunch budget', then: { action: 'relaunch', counted: true, avoidHost: false } },
  ])('$name', ({ facts: f, rule, then }) => {
    expect(decide(NODE_DOWN_POLICY, f)).toEqual({ rule, then });
  });
});

describe('PROCESS_FAILURE_POLICY', () => {
  const facts = (f: Partial<ProcessFailureFacts>): ProcessFailureFacts => ({ consequence: false, crashLoop: false, repeatedUserError: false, nodeFault: false, ...f });
  it.each([
    { name: 'a plain failure restarts in place', facts: facts({}), rule: 'process failure', then: 'restartInPlace' },
    { name: "another node's failure explains it: nothing more", facts: facts({ consequence: true, nodeFault: true }), rule: "a consequence of another node's failure", then: 'ignore' },
    { name: 'a crash loop fails the job, before a node fault', facts: facts({ crashLoop: true, nodeFault: true }), rule: 'crash loop', then: 'failJob' },
    { name: 'a user error repeated at a step fails the job', facts: facts({ repeatedUserError: true }), rule: 'user error repeated at the same step', then: 'failJob' },
    { name: 'a node fault takes the node down', facts: facts({ nodeFault: true }), rule: 'node fault', then: 'nodeDown' },
  ])('$name', ({ facts: f, rule, then }) => {
    expect(decide(PROCESS_FAILURE_POLICY, f)).toEqual({ rule, then });
  });
});

it('a table without a catch-all row is refused', () => {
  expect(() => decide([{ rule: 'never', when: () => false, then: 'x' }], {})).toThrow(/catch-all|always matches/);
});
