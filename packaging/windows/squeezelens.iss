; Inno Setup script for SqueezeLens (compiled by packaging/build.py on Windows when iscc is on PATH):
;   iscc /DAppVersion=0.1.0 /DBundleDir=dist\cpu\squeezelens /DFlavour=cpu /Odist packaging\windows\squeezelens.iss
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Flavour
  #define Flavour "cpu"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\" + Flavour + "\squeezelens"
#endif

[Setup]
AppId={{6F1E2B8C-5A43-4D8E-9C1B-3B2E7A9D4F10}
AppName=SqueezeLens
AppVersion={#AppVersion}
AppPublisher=SqueezeLens developers
DefaultDirName={autopf}\SqueezeLens
DefaultGroupName=SqueezeLens
UninstallDisplayIcon={app}\squeezelens-gui.exe
OutputBaseFilename=SqueezeLens-{#AppVersion}-{#Flavour}-setup
; the payload is mostly compressed libraries already: fast compression, as for the .deb
Compression=lzma2/fast
SolidCompression=no
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
ChangesAssociations=no

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; an upgrade over an older version: its bundle may hold libraries and modules the new one no longer has, which
; would otherwise stay beside the new ones (and could be loaded instead of them)
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\SqueezeLens"; Filename: "{app}\squeezelens-gui.exe"
Name: "{group}\{cm:UninstallProgram,SqueezeLens}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\SqueezeLens"; Filename: "{app}\squeezelens-gui.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\squeezelens-gui.exe"; Description: "{cm:LaunchProgram,SqueezeLens}"; Flags: nowait postinstall skipifsilent
