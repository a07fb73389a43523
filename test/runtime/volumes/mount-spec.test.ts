import { describe, expect, it } from 'vitest';
import { parseMountFlag, parseVolumeFlag } from '../../../runtime/volumes/mount-spec.js';

describe('docker mount syntaxes', () => {
  it('-v: binds, named volumes, anonymous volumes and their options', () => {
    expect(parseVolumeFlag('/h:/c')).toEqual({ type: 'bind', source: '/h', target: '/c', readonly: false, fromVolumeFlag: true });
    expect(parseVolumeFlag('/h/../h2:/c/:ro,rshared')).toEqual({ type: 'bind', source: '/h2', target: '/c', readonly: true, propagation: 'rshared', fromVolumeFlag: true });
    expect(parseVolumeFlag('data:/var/lib/x')).toEqual({ type: 'volume', source: 'data', target: '/var/lib/x', readonly: false });
    expect(parseVolumeFlag('data:/x:ro,nocopy')).toEqual({ type: 'volume', source: 'data', target: '/x', readonly: true, noCopy: true });
    expect(parseVolumeFlag('/x')).toEqual({ type: 'volume', target: '/x', readonly: false });
    expect(parseVolumeFlag('/x:ro')).toEqual({ type: 'volume', target: '/x', readonly: true });
    expect(parseVolumeFlag('/h:/c:z')).toMatchObject({ type: 'bind', readonly: false });
  });

  it('-v: docker\'s errors', () => {
    expect(() => parseVolumeFlag('/h:/c:zz')).toThrow('invalid mode: zz');
    expect(() => parseVolumeFlag('/h:/c:ro,rw')).toThrow('invalid mode: ro,rw');
    expect(() => parseVolumeFlag('a:b:c:d')).toThrow('invalid volume specification');
    expect(() => parseVolumeFlag('x:relative')).toThrow('mount path must be absolute');
    expect(() => parseVolumeFlag('vol:/')).toThrow("destination can't be '/'");
    expect(() => parseVolumeFlag('b@d:/c')).toThrow('includes invalid characters for a local volume name');
    expect(() => parseVolumeFlag('vol:/c:shared')).toThrow('propagation applies to bind mounts');
    expect(() => parseVolumeFlag('/h:/c:nocopy')).toThrow('nocopy applies to volumes');
    expect(() => parseVolumeFlag('/h::/c')).toThrow('invalid volume specification');
  });

  it('--mount: the three types with their keys and aliases', () => {
    expect(parseMountFlag('type=bind,source=/h,target=/c,readonly,bind-propagation=rslave')).toEqual({ type: 'bind', source: '/h', target: '/c', readonly: true, propagation: 'rslave' });
    expect(parseMountFlag('type=bind,src=/h,dst=/c,ro=false,bind-nonrecursive')).toEqual({ type: 'bind', source: '/h', target: '/c', readonly: false, nonRecursive: true });
    expect(parseMountFlag('source=v1,destination=/c,volume-nocopy,volume-label=a=b')).toEqual({ type: 'volume', source: 'v1', target: '/c', readonly: false, noCopy: true, labels: { a: 'b' } });
    expect(parseMountFlag('type=volume,target=/anon')).toEqual({ type: 'volume', target: '/anon', readonly: false });
    expect(parseMountFlag('type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770')).toEqual({ type: 'tmpfs', target: '/t', readonly: false, size: 64 << 20, mode: 0o1770 });
  });

  it('--mount: docker\'s errors', () => {
    expect(() => parseMountFlag('type=bind,target=/c')).toThrow('field Source must not be empty');
    expect(() => parseMountFlag('type=bind,source=rel,target=/c')).toThrow('mount path must be absolute');
    expect(() => parseMountFlag('type=tmpfs,source=x,target=/t')).toThrow('source must not be specified');
    expect(() => parseMountFlag('type=nfs,target=/t')).toThrow('mount type "nfs" is not supported');
    expect(() => parseMountFlag('type=bind,source=/h,target=/c,bind-propagation=weird')).toThrow('invalid value for bind-propagation: weird');
    expect(() => parseMountFlag('type=volume,target=/c,bind-propagation=shared')).toThrow('bind-propagation is not allowed');
    expect(() => parseMountFlag('type=bind,source=/h,target=/c,tmpfs-size=1m')).toThrow('tmpfs-size is not allowed');
    expect(() => parseMountFlag('type=bind,source=/h,target=/c,color=red')).toThrow('unexpected key "color"');
    expect(() => parseMountFlag('type=bind,source,target=/c')).toThrow('invalid field "source" must be a key=value pair');
    expect(() => parseMountFlag('type=volume,source=v')).toThrow('target is required');
    expect(() => parseMountFlag('type=tmpfs,target=/t,tmpfs-mode=999')).toThrow('invalid value for tmpfs-mode');
  });
});
