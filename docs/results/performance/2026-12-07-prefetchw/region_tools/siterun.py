import sys
site = sys.argv[1]
sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__]
sys.path.insert(0, site)
import motifcore; assert motifcore.__file__.startswith(site), motifcore.__file__
script = sys.argv[2]; sys.argv = sys.argv[2:]
exec(compile(open(script).read(), script, "exec"), {"__name__": "__main__"})
