"""Who may see the cameras: users, sessions, API tokens, brute-force limits, headers, access log.

    store = AuthStore("maskwatch.db")          # the site's database (SQLite or PostgreSQL)
    store.add_user("ana", password, "admin")   # what `maskwatch users add` does
    app = create_app(detector, ServeSettings(database="maskwatch.db"))   # every route denied
                                               # unless the request is logged in or marked public

docs/security.md is the operator's guide.
"""
