// The ConfigMap source's reading of its data (the list + watch against a real apiserver is in
// test/kubernetes.control.test.ts): a broken key or entry is rejected alone, named by its key.
import { describe, expect, it } from 'vitest';
import { configMapRead } from './configMap.ts';

describe('configMapRead', () => {
  it('serves every valid key beside broken ones, names each broken key and field, and a duplicate by both keys, in key order', () => {
    const read = configMapRead('default/brain', {
      'a.yaml': 'name: big-jobs\ninclude: {group: ml}\nconfigure: {optimizer: {margin: 0.5}}\n',
      'b.yaml': 'name: broken\nconfigure: {optimizer: {efficiencyThreshold: 2, oomFactor: 3}}\n',
      'c.yml': '- {name: big-jobs, configure: {}}\n- {name: small, configure: {queue: cpu}}\n',
      'd.yaml': 'name: [oops\n',
      'README': 'not a configuration',
    });
    expect(read.configs.map((c) => `${c.where}: ${c.config.name}`)).toEqual(['configmap default/brain key a.yaml: big-jobs', 'configmap default/brain key c.yml[1]: small']);
    expect(read.errors).toEqual([
      'configmap default/brain key b.yaml: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)',
      'configmap default/brain key c.yml[0]: configuration name "big-jobs" is already used in configmap default/brain key a.yaml; names must be unique within a source (this one is ignored)',
      expect.stringMatching(/^configmap default\/brain key d\.yaml:2:1: invalid YAML: /),
    ]);
  });
});
