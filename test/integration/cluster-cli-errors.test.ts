import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/bench/rtsp-server.js';
import { runCli } from '../helpers/cli.js';

/** Every bad input to the scale-out commands: one `visionpipe: error VP_…` line naming the value, exit code 1. */
describe('scale-out commands: bad input', () => {
  it.each([
    { name: 'a --queue that is not redis://', args: ['worker', '--queue', 'http://x'], code: 'VP_CONFIG_INVALID', says: /Invalid --queue URL.*"http:\/\/x"/ },
    { name: 'both capacities', args: ['worker', '--queue', 'redis://127.0.0.1:1', '--capacity-cameras', '2', '--capacity-fps', '5'], code: 'VP_CONFIG_INVALID', says: /Both --capacity-cameras and --capacity-fps/ },
    { name: 'a clip that does not exist', args: ['submit', '/nonexistent/clip.mp4', '--queue', 'redis://127.0.0.1:1', '-o', '/tmp'], code: 'VP_SOURCE_NOT_FOUND', says: /\/nonexistent\/clip\.mp4/ },
  ])('$name → $code', ({ args, code, says }) => {
    const r = runCli(args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`visionpipe: error ${code}`);
    expect(r.stderr).toMatch(says);
  });

  it('no Redis at the --queue address → VP_QUEUE_UNREACHABLE with the reason', async () => {
    const port = await freePort();
    const r = runCli(['cluster', 'status', '--queue', `redis://127.0.0.1:${port}`]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`VP_QUEUE_UNREACHABLE: Cannot reach Redis at redis://127.0.0.1:${port} \\(.*ECONNREFUSED`));
  });
});
