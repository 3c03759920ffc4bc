"""The battery as pytest test modules, shipped with lossproof so that ``lossproof verify`` and a user's
``pytest --pyargs lossproof.battery`` run it from an installed package. The modules are thin: they select cases
(through the plugin's fixtures, lossproof.plugin) and call the engine (lossproof.search, lossproof.judge)."""
