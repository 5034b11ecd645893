/** The tests' broker is the bench's: Debian's mosquitto on 127.0.0.1 and a free port. */
export { HAS_MOSQUITTO, Mosquitto, SKIP_MOSQUITTO_REASON } from '../../src/bench/mosquitto-broker.js';
