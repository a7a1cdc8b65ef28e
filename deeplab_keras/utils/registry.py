"""The one registry of the package (like Model Garden's ``@register("name")``): architectures
(:data:`deeplab_keras.models.BUILDERS`), backbones (:data:`deeplab_keras.backbones.BACKBONES`),
weight importers (:data:`deeplab_keras.importers.formats.REGISTRY`) and export formats
(:data:`deeplab_keras.export.REGISTRY`) are each a :class:`Registry`.

    BUILDERS = Registry("architecture", normalize=lambda s: s.lower().replace("-", ""))

    @BUILDERS.register("deeplabv3")
    def DeepLabV3(...): ...

    BUILDERS["deeplabv3"]            # a read-only mapping: name -> entry, in registration order
    BUILDERS.lookup("DeepLab-V3")    # normalised and aliased; unknown: one line listing the names
    BUILDERS.build("deeplabv3", num_classes=21)   # lookup(name)(...)

Nothing here imports TensorFlow.
"""
import collections.abc


class Registry(collections.abc.Mapping):
    """Name -> entry (a builder, a spec, a format), filled with :meth:`register`.

    Args:
        kind: what the entries are, for messages ("architecture", "backbone", ...).
        normalize: maps a user's spelling to a registered name (default: unchanged).
        aliases: other spellings (after ``normalize``) -> registered name.
    """

    def __init__(self, kind, *, normalize=None, aliases=None):
        self.kind = kind
        self._normalize = normalize or (lambda name: name)
        self._aliases = dict(aliases or {})
        self._entries = {}

    def register(self, name, entry=None):
        """``@registry.register("name")`` on a function or class, or
        ``registry.register("name", entry)``; returns the entry. A name registered twice is an
        error (a second entry silently replacing the first would change every user of it)."""
        def add(value):
            if name in self._entries and self._entries[name] is not value:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = value
            return value
        return add if entry is None else add(entry)

    def canonical(self, name):
        """The registered name for ``name`` (normalised, aliases resolved); ValueError naming
        the known ones."""
        key = self._normalize(str(name))
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise ValueError(f"Unknown {self.kind} {name!r}. Available: {', '.join(self._entries)}")
        return key

    def lookup(self, name):
        """The entry for ``name`` (see :meth:`canonical`)."""
        return self._entries[self.canonical(name)]

    def build(self, name, /, *args, **kwargs):
        """``lookup(name)(*args, **kwargs)``."""
        return self.lookup(name)(*args, **kwargs)

    def view(self, wrap):
        """A live read-only mapping name -> ``wrap(entry)`` over this registry (entries
        registered later appear in it too); each wrapped entry is made once."""
        return _View(self, wrap)

    # read-only Mapping protocol: the registered names as they are
    def __getitem__(self, name):
        return self._entries[name]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def __setitem__(self, name, value):
        raise TypeError(f"{self.kind} entries are added with register({name!r}, entry), "
                        "which refuses a name taken")

    def __delitem__(self, name):
        """Unregister ``name`` (a test's temporary entry)."""
        del self._entries[name]

    def __repr__(self):
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


class _View(collections.abc.Mapping):
    def __init__(self, registry, wrap):
        self.registry, self._wrap, self._made = registry, wrap, {}

    def __getitem__(self, name):
        entry = self.registry[name]
        made = self._made.get(name)
        if made is None or made[0] is not entry:
            made = self._made[name] = (entry, self._wrap(entry))
        return made[1]

    def __iter__(self):
        return iter(self.registry)

    def __len__(self):
        return len(self.registry)

    def canonical(self, name):
        return self.registry.canonical(name)

    def lookup(self, name):
        return self[self.registry.canonical(name)]

    def __repr__(self):
        return f"Registry view({self.registry.kind!r}: {', '.join(self.registry)})"
