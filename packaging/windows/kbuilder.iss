; Inno Setup script: kbuilder-setup-VERSION.exe from the PyInstaller bundle.
;
; Built on Windows (it cannot be built on Linux); see packaging/README.md:
;   1. python packaging\icon.py build\icons
;   2. pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\kbuilder.spec
;   3. iscc packaging\windows\kbuilder.iss          (Inno Setup 6)
; Output: dist\kbuilder-setup-0.1.0.exe
;
; Installs per user by default (no administrator rights needed; the dialog offers "for all
; users" too), adds a Start menu entry and, if asked, a desktop shortcut, and makes .kbproj
; files open with kbuilder. Uninstall from Settings > Apps removes every installed file.

#define AppName "kbuilder"
#define AppVersion "0.1.0"
#define AppExe "kbuilder.exe"
#define Root ".."

[Setup]
AppId={{6F1B9C1E-4C55-4B8E-9A0E-6B1F8F7C2D31}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=kbuilder developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\..\dist
OutputBaseFilename=kbuilder-setup-{#AppVersion}
SetupIconFile={#Root}\..\build\icons\kbuilder.ico
UninstallDisplayIcon={app}\{#AppExe}
; The bundle is ~1 GB of libraries: LZMA2 with a solid archive makes the smallest installer.
Compression=lzma2/max
SolidCompression=yes
LZMAUseSeparateProcess=yes
WizardStyle=modern
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole one-folder bundle: kbuilder.exe and _internal\.
Source: "{#Root}\..\dist\kbuilder\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: desktopicon

[Registry]
; .kbproj -> kbuilder (per user or per machine, following the install mode).
Root: HKA; Subkey: "Software\Classes\.kbproj"; ValueType: string; ValueName: ""; ValueData: "kbuilder.project"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\kbuilder.project"; ValueType: string; ValueName: ""; ValueData: "kbuilder project"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\kbuilder.project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\kbuilder.project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" gui ""%1"""

[Run]
Filename: "{app}\{#AppExe}"; Parameters: "gui"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Anything the app wrote inside its own folder (nothing is expected; kept clean anyway).
Type: filesandordirs; Name: "{app}"
