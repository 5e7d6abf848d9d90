"""The HTML reports' one renderer: a jinja2 environment over templates/, and inline PNG charts."""
