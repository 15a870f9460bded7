// The ConfigMap source's reading of its data (the list + watch against a real apiserver is in
// test/kubernetes.control.test.ts, through the sync workflow in test/kubernetes.e2e.test.ts): a
// broken key or entry is rejected alone, named by its key; a bad source definition says what to fix.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../store/index.ts';
import { configMapRead, registerConfigMapSource } from './configMap.ts';
import { createSource, parseSourceList } from './registry.ts';

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

describe('a configmap source in ROVER_BRAIN_SOURCES', () => {
  // The factory never touches the store.
  const build = (sources: string) => parseSourceList(sources).map((def) => createSource(def, { store: {} as Store }));
  const kubeconfig = path.join(mkdtempSync(path.join(os.tmpdir(), 'rover-cm-')), 'kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: t',
    'clusters: [{name: t, cluster: {server: "http://127.0.0.1:1"}}]', 'users: [{name: t, user: {token: x}}]', 'contexts: [{name: t, context: {cluster: t, user: t}}]',
  ].join('\n'));

  it('needs a cluster to read from', () => {
    registerConfigMapSource({ inCluster: false });
    expect(() => build('cm=configmap:default/brain')).toThrow('ROVER_BRAIN_SOURCES: source "cm" reads a ConfigMap: set ROVER_KUBECONFIG or ROVER_KUBERNETES_IN_CLUSTER=true');
  });

  it('names the source and the expected form of a bad location', () => {
    registerConfigMapSource({ kubeconfig, inCluster: false });
    expect(build('cm=configmap:default/brain')[0]?.location).toBe('configmap default/brain');
    expect(() => build('cm=configmap:brain')).toThrow('ROVER_BRAIN_SOURCES: source "cm": configmap location must be <namespace>/<name> (got "brain")');
    expect(() => build('cm=configmap')).toThrow('configmap location must be <namespace>/<name> (got "")');
  });
});
