"""Tests of storage/ itself (its SQLite turns, its migrations): like tests/support, they may
use SQLAlchemy and the models directly."""
