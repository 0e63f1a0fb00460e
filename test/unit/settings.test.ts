import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HelpRequested, SettingsError, httpUrl, memberList, port, readSettings, setting, withoutTrailingSlashes } from '../../src/lib/settings.js';
import { settingsSpec as facadeSettings } from '../../src/facade-service/main.js';
import { settingsSpec as memberSettings } from '../../src/local/hazelcast-member.js';

const spec = {
  port: setting('port', 'PORT', port, 'HTTP port', 8080),
  members: setting('members', 'HAZELCAST_MEMBERS', memberList, 'members', '127.0.0.1:5701'),
};

describe('readSettings', () => {
  it('takes a flag over an environment variable over the default', () => {
    assert.equal(readSettings(spec, [], {}).port, 8080);
    assert.equal(readSettings(spec, [], { PORT: '9000' }).port, 9000);
    assert.equal(readSettings(spec, ['--port', '9100'], { PORT: '9000' }).port, 9100);
  });

  it('splits and checks member lists', () => {
    assert.deepEqual(readSettings(spec, ['--members', 'a:1, b:2'], {}).members, ['a:1', 'b:2']);
    assert.throws(() => readSettings(spec, ['--members', 'a'], {}), /each member must be host:port/);
  });

  it('names the flag, the variable and the value that is wrong, all at once', () => {
    try {
      readSettings(spec, ['--port', 'abc'], { HAZELCAST_MEMBERS: ',' });
      assert.fail('expected a SettingsError');
    } catch (err) {
      assert.ok(err instanceof SettingsError);
      assert.equal(err.problems.length, 2);
      assert.match(err.problems[0] ?? '', /--port \/ PORT \(from --port\) = "abc"/);
      assert.match(err.problems[1] ?? '', /HAZELCAST_MEMBERS \(from HAZELCAST_MEMBERS\)/);
    }
  });

  it('rejects unknown flags and ports out of range', () => {
    assert.throws(() => readSettings(spec, ['--nope', '1'], {}), SettingsError);
    assert.throws(() => readSettings(spec, ['--port', '70000'], {}), /PORT/);
  });

  it('lists every option with its variable on --help', () => {
    assert.throws(
      () => readSettings(facadeSettings, ['--help'], {}, 'usage: mqlab facade'),
      (err: unknown) => err instanceof HelpRequested && /--config-server-url\s+CONFIG_SERVER_URL/.test(err.text) && /default: 8080/.test(err.text),
    );
  });

  it('gives the facade the lab defaults', () => {
    const settings = readSettings(facadeSettings, [], {});
    assert.equal(settings.port, 8080);
    assert.equal(settings.configServerUrl, 'http://127.0.0.1:8888');
    assert.deepEqual(settings.hazelcastMembers, ['127.0.0.1:5701', '127.0.0.1:5702', '127.0.0.1:5703']);
  });
});

describe('closed doors by default', () => {
  it('services listen on loopback and a member binds 127.0.0.1 unless told otherwise', () => {
    assert.equal(readSettings(facadeSettings, [], {}).host, '127.0.0.1');
    assert.equal(readSettings(facadeSettings, [], { HOST: '0.0.0.0' }).host, '0.0.0.0');
    assert.equal(readSettings(memberSettings, [], {}).host, '127.0.0.1');
  });

  it("a member's --host must be an IP address (the one interface it binds)", () => {
    assert.throws(
      () => readSettings(memberSettings, ['--host', 'localhost'], {}),
      (err: unknown) => err instanceof SettingsError && /--host \/ HAZELCAST_HOST .*must be an IP address/.test(err.message),
    );
    assert.equal(readSettings(memberSettings, ['--host', '10.1.2.3'], {}).host, '10.1.2.3');
  });
});

describe('withoutTrailingSlashes', () => {
  it('drops every slash at the end and nothing else', () => {
    assert.equal(withoutTrailingSlashes('http://a:1/'), 'http://a:1');
    assert.equal(withoutTrailingSlashes('http://a:1///'), 'http://a:1');
    assert.equal(withoutTrailingSlashes('http://a:1/base/'), 'http://a:1/base');
    assert.equal(withoutTrailingSlashes('http://a:1//base//x'), 'http://a:1//base//x');
    assert.equal(withoutTrailingSlashes('http://a:1'), 'http://a:1');
    assert.equal(withoutTrailingSlashes('/'), '');
    assert.equal(withoutTrailingSlashes(''), '');
  });

  it('is what an http(s) URL setting keeps', () => {
    assert.equal(httpUrl.parse(' http://127.0.0.1:8888// '), 'http://127.0.0.1:8888');
  });
});
