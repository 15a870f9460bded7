// The Ray head's workers get a port range that holds none of the head's own ports: Ray refuses to
// start otherwise (CI saw dashboard_agent_grpc 36505 inside the workers' 36336–36536).
import { expect, it } from 'vitest';
import { workerPortRange } from './ray.ts';

it('picks a workers’ port range clear of every port the head was given', () => {
  // Ports every 400 over the whole span the range is drawn from: few bases fit between them.
  const taken = Array.from({ length: 51 }, (_, i) => 30000 + 400 * i);
  for (let draw = 0; draw < 500; draw++) {
    const base = workerPortRange(taken);
    expect(taken.filter((port) => port >= base && port <= base + 200)).toEqual([]);
  }
});
