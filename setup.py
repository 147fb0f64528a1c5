"""Packaging from settings.ini (nbdev 2 layout); pyproject.toml (written by nbdev) marks these fields dynamic."""
from configparser import ConfigParser
from pathlib import Path
import setuptools, shlex, shutil
from setuptools.command.build_py import build_py

class with_reports(build_py):
    "Copy the report notebooks (nbs/report_*.ipynb) into the built package, so a non-editable install runs the study."
    def run(self):
        super().run()
        dest = Path(self.build_lib) / 'qstudy' / 'reports'
        dest.mkdir(parents=True, exist_ok=True)
        for nb in sorted(Path('nbs').glob('report_*.ipynb')): shutil.copy(nb, dest / nb.name)

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
reqs = shlex.split(cfg.get('requirements', ''))
brevitas_reqs = shlex.split(cfg.get('brevitas_requirements', ''))
dev_reqs = shlex.split(cfg.get('dev_requirements', '')) + brevitas_reqs   # the tests evaluate a Brevitas model
scripts = [s for s in cfg.get('console_scripts', '').split() if s]
readme = Path('README.md').read_text(encoding='utf-8') if Path('README.md').exists() else cfg['description']

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=readme, long_description_content_type='text/markdown',
    keywords=cfg['keywords'].split(), author=cfg['author'], author_email=cfg['author_email'],
    license='Apache-2.0', url=cfg['git_url'], python_requires=f">={cfg['min_python']}",
    classifiers=['Programming Language :: Python :: 3', 'License :: OSI Approved :: Apache Software License'],
    packages=setuptools.find_packages(include=['qstudy', 'qstudy.*']),
    package_data={'qstudy': ['*.json', 'shipped/*/*/*.json', 'shipped/*/*/*.qsw']}, include_package_data=True, install_requires=reqs, extras_require={'dev': dev_reqs, 'brevitas': brevitas_reqs},
    cmdclass={'build_py': with_reports},
    entry_points={'console_scripts': scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
