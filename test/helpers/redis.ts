/** The tests' Redis is the bench's: Debian's redis-server on 127.0.0.1 and a free port, started and stopped by them. */
export { HAS_REDIS, RedisServer, SKIP_REDIS_REASON } from '../../src/cluster/redis-server.js';
