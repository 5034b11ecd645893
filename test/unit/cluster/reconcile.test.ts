import { describe, expect, it } from 'vitest';
import { cameraJobId } from '../../../src/cluster/cameras-file.js';
import type { DesiredCamera } from '../../../src/cluster/job-schemas.js';
import { planReconcile, stillDesired, type CameraJobView } from '../../../src/cluster/reconcile.js';

const cam = (id: string, hash: string): DesiredCamera => ({ id, hash, fps: 5, config: { source: { uri: `rtsp://x/${id}` } } });
const job = (id: string, hash: string, state: string): CameraJobView => ({ jobId: cameraJobId(id, hash), cameraId: id, hash, state });

describe('planReconcile: the camera queue against the desired cameras', () => {
  it.each([
    { name: 'nothing desired, nothing queued', desired: [], jobs: [], add: [], remove: [] },
    { name: 'a new camera gets a job', desired: [cam('a', 'h1')], jobs: [], add: ['a'], remove: [] },
    { name: 'a camera with a waiting job: nothing to do', desired: [cam('a', 'h1')], jobs: [job('a', 'h1', 'waiting')], add: [], remove: [] },
    { name: 'a camera running on a worker: nothing to do', desired: [cam('a', 'h1')], jobs: [job('a', 'h1', 'active')], add: [], remove: [] },
    { name: 'a camera handed back (delayed): nothing to do', desired: [cam('a', 'h1')], jobs: [job('a', 'h1', 'delayed')], add: [], remove: [] },
    { name: 'a removed camera\'s waiting job is removed', desired: [], jobs: [job('a', 'h1', 'waiting')], add: [], remove: [cameraJobId('a', 'h1')] },
    { name: 'a removed camera\'s running job is left to its worker', desired: [], jobs: [job('a', 'h1', 'active')], add: [], remove: [] },
    {
      name: 'a changed camera: new job added, old waiting one removed',
      desired: [cam('a', 'h2')],
      jobs: [job('a', 'h1', 'waiting')],
      add: ['a'],
      remove: [cameraJobId('a', 'h1')],
    },
    { name: 'a changed camera still running its old version: new job, the old one stops on its worker', desired: [cam('a', 'h2')], jobs: [job('a', 'h1', 'active')], add: ['a'], remove: [] },
    { name: 'a finished (failed) job does not count: the camera gets a job again', desired: [cam('a', 'h1')], jobs: [job('a', 'h1', 'failed')], add: ['a'], remove: [] },
  ])('$name', ({ desired, jobs, add, remove }) => {
    const plan = planReconcile(desired, jobs);
    expect(plan.add.map((c) => c.id)).toEqual(add);
    expect(plan.remove).toEqual(remove);
  });

  it('stillDesired: same id and hash only', () => {
    const desired = new Map([['a', { hash: 'h1' }]]);
    expect(stillDesired('a', 'h1', desired)).toBe(true);
    expect(stillDesired('a', 'h2', desired)).toBe(false);
    expect(stillDesired('b', 'h1', desired)).toBe(false);
  });
});
