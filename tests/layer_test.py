#!/usr/bin/env python3
"""The include graph flows one way, as docs/architecture.md's "Layers" table says.

  python3 tests/layer_test.py [PROJECT_DIR]

Reads the table (module, job, may include), then checks every quoted #include of every file:
  * src/<module>/...: its own module, a module it may include, or a public vocabulary header
    (include/paligemma/*.h other than engine.h and the headers that include it);
  * include/paligemma/*.h: only other public headers, and no third-party header;
  * tools/cli, tools/server: only public headers and the tool's own files (the benchmarks under tools/bench
    measure internals and, like the tests, may include src/).
Exits 1 listing every violation.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
QUOTED = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ANGLED = re.compile(r'^\s*#\s*include\s+<([^>]+)>', re.M)
SOURCES = ('.h', '.cpp')


def layer_table():
    text = (ROOT / 'docs/architecture.md').read_text()
    section = text.split('## Layers', 1)[1].split('\n## ', 1)[0]
    allowed = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 3 or not cells[0].startswith('`'):
            continue
        module = cells[0].strip('`')
        allowed[module] = set(re.findall(r'`([a-z_]+)`', cells[2]))
        if cells[2] == 'every module':
            allowed[module] = None
    if not allowed:
        sys.exit('docs/architecture.md has no "Layers" table')
    return allowed


def files(folder):
    return sorted(p for p in (ROOT / folder).rglob('*') if p.suffix in SOURCES)


def public_headers():
    """Public headers, and those that (directly or not) include paligemma/engine.h."""
    headers = {p.name: QUOTED.findall(p.read_text()) for p in files('include/paligemma')}
    engine_side = {'engine.h'}
    changed = True
    while changed:
        changed = False
        for name, includes in headers.items():
            if name not in engine_side and any(i.removeprefix('paligemma/') in engine_side for i in includes):
                engine_side.add(name)
                changed = True
    return headers, {'paligemma/' + n for n in engine_side}


def main():
    allowed = layer_table()
    headers, engine_side = public_headers()
    problems = []

    for name, includes in headers.items():
        path = ROOT / 'include/paligemma' / name
        for inc in includes:
            if not inc.startswith('paligemma/') or not (ROOT / 'include' / inc).is_file():
                problems.append(f'include/paligemma/{name}: includes "{inc}", which is not a public header')
        for inc in ANGLED.findall(path.read_text()):
            if '/' in inc or inc.endswith('.h') and not inc.startswith('c'):
                problems.append(f'include/paligemma/{name}: includes <{inc}>, not a standard header')

    modules = {p.name for p in (ROOT / 'src').iterdir() if p.is_dir()}
    for module in sorted(modules - allowed.keys()):
        problems.append(f'src/{module}/ is not in docs/architecture.md\'s "Layers" table')
    for path in files('src'):
        rel = path.relative_to(ROOT)
        if len(rel.parts) < 3:
            problems.append(f'{rel}: every source file belongs to a module folder under src/')
            continue
        module = rel.parts[1]
        may = allowed.get(module, set())
        for inc in QUOTED.findall(path.read_text()):
            top = inc.split('/', 1)[0]
            if top == 'paligemma':
                if inc in engine_side and may is not None:
                    problems.append(f'{rel}: includes "{inc}"; only api and the tools may')
            elif top != module and may is not None and top not in may:
                problems.append(f'{rel}: {module} includes "{inc}" ({top} is not below {module})')

    for tool in ('tools/cli', 'tools/server'):
        for path in files(tool):
            rel = path.relative_to(ROOT)
            for inc in QUOTED.findall(path.read_text()):
                own = (path.parent / inc).resolve()
                if inc.startswith('paligemma/') and (ROOT / 'include' / inc).is_file():
                    continue
                if own.is_file() and (ROOT / 'tools') in own.parents:
                    continue
                problems.append(f'{rel}: includes "{inc}"; the tools use only include/paligemma/')

    for p in problems:
        print(p)
    print(f'{len(problems)} include(s) against the layers' if problems else 'layers: every include flows one way')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
