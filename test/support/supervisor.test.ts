// The Supervisor stand-in's templating, checked against what the real Supervisor does (see test/support/supervisor.ts).

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from './cluster.ts';
import { renderTemplate, SupervisedMember, type GroupState } from './supervisor.ts';

const ips = { 'redis-0': '198.18.0.10', 'redis-1': '198.18.0.11', 'redis-2': '198.18.0.12' };
const group = (election: GroupState['election'], leader?: string, dead: string[] = [], suspect: string[] = []): GroupState => ({
  election,
  leader,
  members: Object.entries(ips).map(([name, ip]) => ({ name, ip, alive: !dead.includes(name) && !suspect.includes(name), suspect: suspect.includes(name) })),
});

// Unit tests run without the integration set-up's temporary root: this file removes its own directory.
const dir = mkdtempSync(join(tmpdir(), 'hab-pod-role-supervisor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let members = 0;

function member(name = 'redis-1') {
  return new SupervisedMember({
    name,
    ip: ips[name as keyof typeof ips],
    planDir: join(repoRoot, 'examples/redis'),
    svcDir: join(dir, `member-${++members}`, 'redis-leader'),
    service: 'redis-leader',
    pkgPaths: { 'core/redis': '/hab/pkgs/core/redis/4.0.14/20200101000000' },
    env: {},
  });
}

describe('the Supervisor stand-in', () => {
  it('renders "" for pkgPathFor of a package that is not a dependency, silently', () => {
    const data = { __pkgPaths: { 'core/redis': '/hab/pkgs/core/redis/4.0.14/20200101000000' } };
    expect(renderTemplate('{{pkgPathFor "core/redis"}}/bin/redis-cli', data)).toBe('/hab/pkgs/core/redis/4.0.14/20200101000000/bin/redis-cli');
    expect(renderTemplate('{{pkgPathFor "core/hab-pod-role"}}/bin/hab-pod-role', data)).toBe('/bin/hab-pod-role');
  });

  it('keeps the flags and svc.leader of the last finished election while a new one runs', () => {
    const m = member('redis-2');
    m.render(group('finished', 'redis-0'));
    const config = () => readFileSync(join(m.configPath, 'redis.config'), 'utf8');
    const election = () => readFileSync(join(m.configPath, 'election.toml'), 'utf8');
    expect(config()).toContain('slaveof 198.18.0.10 6379');
    m.render(group('running', undefined, ['redis-0']));
    // The dead leader is still svc.leader, and this member still a follower; only the status changed.
    expect(config()).toContain('slaveof 198.18.0.10 6379');
    expect(election()).toMatch(/leader = false\nfollower = true\nfinished = false/);
    m.render(group('finished', 'redis-1', ['redis-0']));
    expect(config()).toContain('slaveof 198.18.0.11 6379');
    expect(election()).toMatch(/leader = false\nfollower = true\nfinished = true/);
  });

  it('rewrites rendered files in place: the same inode, truncated and written', () => {
    const m = member();
    m.render(group('finished', 'redis-0'));
    const path = join(m.configPath, 'election.toml');
    const before = statSync(path).ino;
    expect(m.render(group('running', undefined, ['redis-0'])).configChanged).toBe(true);
    expect(statSync(path).ino).toBe(before);
  });

  it('counts suspect members in svc.members, and only alive ones in eachAlive', () => {
    const data = { svc: { members: [{ member_id: 'a', alive: true }, { member_id: 'b', alive: false, suspect: true }] } };
    expect(renderTemplate('{{#each svc.members}}{{member_id}} {{/each}}|{{#eachAlive svc.members}}{{member_id}} {{/eachAlive}}', data)).toBe('a b |a ');
    const census = member().templateData(group('finished', 'redis-0', ['redis-0'], ['redis-2']));
    expect(renderTemplate('{{#each svc.members}}{{member_id}} {{/each}}|{{#eachAlive svc.members}}{{member_id}} {{/eachAlive}}', census)).toBe('redis-1 redis-2 |redis-1 ');
  });

  it('runs no hook while an election runs or has no quorum, but renders the templates', async () => {
    const m = member();
    expect(await m.tick(group('running'))).toBe('waiting');
    expect(await m.tick(group('no_quorum'))).toBe('waiting');
    expect(readFileSync(join(m.configPath, 'election.toml'), 'utf8')).toMatch(/finished = false/);
    expect(m.output).toEqual(['redis-leader.redis-1: Waiting to execute hooks; election in progress.']);
  });
});
