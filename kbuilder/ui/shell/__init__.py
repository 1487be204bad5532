"""The window around the tabs: the main window, start page, dialogs, autosave, theme, icons, help."""
